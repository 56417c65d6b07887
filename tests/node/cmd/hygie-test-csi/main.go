// Command hygie-test-csi is the test node's CSI driver: directories on the node's disk,
// provisioned and cloned through the real external-provisioner, mounted by the real kubelet.
//
// It stands in for the providers' encrypting drivers (Scaleway's and Outscale's LUKS on the
// node, Cinder's encrypted volume types) where this kernel has no dm-crypt. It keeps their
// contract, which is what Hygie relies on: a class that names a node-stage Secret cannot be
// mounted without that Secret (the kubelet fetches it), without the key the class names in it,
// or with a passphrase other than the one the volume was first opened with; a clone opens with
// its source's passphrase, as a clone of a LUKS volume carries its source's header.
//
// It registers itself with the kubelet through the plugin registration socket, the job of
// node-driver-registrar, whose module the Go module proxy does not serve.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	registration "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// DriverName is the provisioner name the test StorageClasses use.
const DriverName = "hostpath.csi.hygie.test"

func main() {
	endpoint := flag.String("endpoint", "", "path of the CSI socket")
	registry := flag.String("registration-dir", "", "the kubelet's plugins_registry directory")
	root := flag.String("root", "", "directory that holds the volumes")
	node := flag.String("node", "", "name of the node")
	flag.Parse()
	if *endpoint == "" || *registry == "" || *root == "" || *node == "" {
		log.Fatal("--endpoint, --registration-dir, --root and --node are required")
	}
	if err := os.MkdirAll(*root, 0o700); err != nil {
		log.Fatal(err)
	}
	driver := &driver{root: *root, node: *node}

	csiServer := grpc.NewServer(grpc.UnaryInterceptor(logCalls))
	csi.RegisterIdentityServer(csiServer, driver)
	csi.RegisterControllerServer(csiServer, driver)
	csi.RegisterNodeServer(csiServer, driver)
	go serve(csiServer, *endpoint)

	regServer := grpc.NewServer()
	registration.RegisterRegistrationServer(regServer, &registrar{endpoint: *endpoint})
	go serve(regServer, filepath.Join(*registry, DriverName+"-reg.sock"))

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	regServer.Stop()
	csiServer.Stop()
}

func serve(server *grpc.Server, socket string) {
	_ = os.Remove(socket)
	listener, err := net.Listen("unix", socket)
	if err != nil {
		log.Fatal(err)
	}
	if err := server.Serve(listener); err != nil {
		log.Fatal(err)
	}
}

// logCalls logs each call and its outcome, so that a failed mount is explained in the log.
func logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		log.Printf("%s: %v", info.FullMethod, err)
	} else {
		log.Printf("%s: ok", info.FullMethod)
	}
	return resp, err
}

// registrar answers the kubelet's plugin watcher.
type registrar struct {
	registration.UnimplementedRegistrationServer
	endpoint string
}

func (r *registrar) GetInfo(context.Context, *registration.InfoRequest) (*registration.PluginInfo, error) {
	return &registration.PluginInfo{
		Type:              registration.CSIPlugin,
		Name:              DriverName,
		Endpoint:          r.endpoint,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

func (r *registrar) NotifyRegistrationStatus(_ context.Context, status *registration.RegistrationStatus) (*registration.RegistrationStatusResponse, error) {
	if !status.PluginRegistered {
		log.Printf("the kubelet refused the registration: %s", status.Error)
	}
	return &registration.RegistrationStatusResponse{}, nil
}
