package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Parameters of a StorageClass that this driver reads, and the volume context it hands to the
// node.
const (
	// paramEncrypted: "true" when volumes open only with a passphrase, as LUKS volumes do.
	paramEncrypted = "encrypted"
	// paramPassphraseKey: the key of the node-stage Secret that holds the passphrase. Each
	// provider's driver hard-codes its own (Scaleway `encryptionPassphrase`, Outscale `key`).
	paramPassphraseKey = "passphraseKey"
)

// driver serves the identity, controller and node services of one node.
type driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer
	root string
	node string
}

// A volume is a directory: its files under data/, the digest of the passphrase it was first
// opened with in passphrase.sha256.
func (d *driver) volumeDir(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, "/.") {
		return "", status.Errorf(codes.InvalidArgument, "volume id %q is not a plain name", id)
	}
	return filepath.Join(d.root, id), nil
}

func (d *driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: DriverName, VendorVersion: "1"}, nil
}

func (d *driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{{
		Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{
			Type: csi.PluginCapability_Service_CONTROLLER_SERVICE,
		}},
	}}}, nil
}

func (d *driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

func controllerCapability(c csi.ControllerServiceCapability_RPC_Type) *csi.ControllerServiceCapability {
	return &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{
		Rpc: &csi.ControllerServiceCapability_RPC{Type: c},
	}}
}

func (d *driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: []*csi.ControllerServiceCapability{
		controllerCapability(csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME),
		controllerCapability(csi.ControllerServiceCapability_RPC_CLONE_VOLUME),
	}}, nil
}

// CreateVolume makes an empty volume, or a copy of another one with its passphrase digest.
func (d *driver) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	dir, err := d.volumeDir(req.GetName())
	if err != nil {
		return nil, err
	}
	volumeContext := map[string]string{}
	if req.GetParameters()[paramEncrypted] == "true" {
		key := req.GetParameters()[paramPassphraseKey]
		if key == "" {
			return nil, status.Errorf(codes.InvalidArgument, "an encrypted class needs the %s parameter", paramPassphraseKey)
		}
		volumeContext[paramEncrypted] = "true"
		volumeContext[paramPassphraseKey] = key
	}
	source := req.GetVolumeContentSource()
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := d.populate(dir, source); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId:      req.GetName(),
		CapacityBytes: req.GetCapacityRange().GetRequiredBytes(),
		VolumeContext: volumeContext,
		ContentSource: source,
	}}, nil
}

func (d *driver) populate(dir string, source *csi.VolumeContentSource) error {
	if source == nil {
		return os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	}
	if source.GetSnapshot() != nil {
		return status.Error(codes.InvalidArgument, "snapshots are not supported")
	}
	from, err := d.volumeDir(source.GetVolume().GetVolumeId())
	if err != nil {
		return err
	}
	if _, err := os.Stat(from); err != nil {
		return status.Errorf(codes.NotFound, "source volume %s: %v", source.GetVolume().GetVolumeId(), err)
	}
	if out, err := exec.Command("cp", "-a", from+"/.", dir+"/").CombinedOutput(); err != nil {
		return status.Errorf(codes.Internal, "copying %s: %v: %s", from, err, out)
	}
	return nil
}

func (d *driver) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	dir, err := d.volumeDir(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, status.Errorf(codes.Internal, "deleting %s: %v", dir, err)
	}
	return &csi.DeleteVolumeResponse{}, nil
}

func (d *driver) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeCapabilities: req.GetVolumeCapabilities(),
	}}, nil
}

func (d *driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{Capabilities: []*csi.NodeServiceCapability{{
		Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{
			Type: csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		}},
	}}}, nil
}

func (d *driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: d.node}, nil
}

// NodeStageVolume opens the volume: an encrypted one only with the passphrase it was first
// opened with, read from the key the class names in the node-stage Secret.
func (d *driver) NodeStageVolume(_ context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	dir, err := d.volumeDir(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if req.GetVolumeContext()[paramEncrypted] == "true" {
		if err := unlock(dir, req.GetVolumeContext()[paramPassphraseKey], req.GetSecrets()); err != nil {
			return nil, err
		}
	}
	if err := bindMount(filepath.Join(dir, "data"), req.GetStagingTargetPath(), false); err != nil {
		return nil, err
	}
	return &csi.NodeStageVolumeResponse{}, nil
}

func unlock(dir, key string, secrets map[string]string) error {
	passphrase := secrets[key]
	if passphrase == "" {
		return status.Errorf(codes.InvalidArgument, "the node-stage Secret has no passphrase under the key %q", key)
	}
	sum := sha256.Sum256([]byte(passphrase))
	digest := hex.EncodeToString(sum[:])
	file := filepath.Join(dir, "passphrase.sha256")
	recorded, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.WriteFile(file, []byte(digest), 0o600)
	case err != nil:
		return status.Errorf(codes.Internal, "reading %s: %v", file, err)
	case string(recorded) != digest:
		return status.Error(codes.PermissionDenied, "the passphrase does not open this volume")
	}
	return nil
}

func (d *driver) NodeUnstageVolume(_ context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	if err := unmount(req.GetStagingTargetPath(), false); err != nil {
		return nil, err
	}
	return &csi.NodeUnstageVolumeResponse{}, nil
}

func (d *driver) NodePublishVolume(_ context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	if err := bindMount(req.GetStagingTargetPath(), req.GetTargetPath(), req.GetReadonly()); err != nil {
		return nil, err
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

func (d *driver) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	if err := unmount(req.GetTargetPath(), true); err != nil {
		return nil, err
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// bindMount mounts source at target, read-only when asked; a target already mounted is left
// as it is, so that the kubelet's retries are harmless.
func bindMount(source, target string, readOnly bool) error {
	if target == "" {
		return status.Error(codes.InvalidArgument, "no target path")
	}
	if mounted, err := isMountPoint(target); err != nil || mounted {
		return err
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return status.Errorf(codes.Internal, "creating %s: %v", target, err)
	}
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return status.Errorf(codes.Internal, "bind-mounting %s at %s: %v", source, target, err)
	}
	if readOnly {
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
		if err := unix.Mount("", target, "", flags, ""); err != nil {
			_ = unix.Unmount(target, 0)
			return status.Errorf(codes.Internal, "remounting %s read-only: %v", target, err)
		}
	}
	return nil
}

// unmount unmounts target and, for a publish target, removes the directory the driver made
// (the kubelet makes and removes staging directories itself).
func unmount(target string, remove bool) error {
	mounted, err := isMountPoint(target)
	if err != nil {
		return err
	}
	if mounted {
		if err := unix.Unmount(target, 0); err != nil {
			return status.Errorf(codes.Internal, "unmounting %s: %v", target, err)
		}
	}
	if !remove {
		return nil
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return status.Errorf(codes.Internal, "removing %s: %v", target, err)
	}
	return nil
}

// isMountPoint reads the mount table, where a bind mount shows as any other mount.
func isMountPoint(path string) (bool, error) {
	file, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, status.Errorf(codes.Internal, "reading the mount table: %v", err)
	}
	defer file.Close()
	clean := filepath.Clean(path)
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) > 4 && fields[4] == clean {
			return true, nil
		}
	}
	if err := scanner.Err(); err != nil {
		return false, fmt.Errorf("reading the mount table: %w", err)
	}
	return false, nil
}
