//! Rules on a Dataset: its profile exists (HYG008), may hold health data (HYG002) encrypted
//! (HYG003) by an operator out of reach of non-EEA law when it must be (HYG012), and an S3
//! import has somewhere narrow to go (HYG005) and an importer (HYG011).

use kube::ResourceExt;

use super::{
    Findings, Inventory, Rule, Violation,
    images::untrusted,
    names::check_dataset_name,
    network::{check_egress, destinations},
    profile::has_valid_hds,
    resources::check_size,
    sovereignty::check_immunity,
};
use crate::api::{Dataset, hosting_profile::EncryptionType};

pub fn check_dataset(
    dataset: &Dataset,
    inventory: &Inventory,
    now: jiff::Timestamp,
) -> Vec<Violation> {
    let mut findings = Findings::for_object(dataset);
    let spec = &dataset.spec;
    check_dataset_name(&mut findings, &dataset.name_any());
    check_size(&mut findings, "spec.storage.size", &spec.storage.size);
    if let Some(claim) = spec
        .source
        .as_ref()
        .and_then(|s| s.persistent_volume_claim.as_ref())
    {
        let namespace = dataset.namespace().unwrap_or_default();
        let own = crate::build::labels::dataset_claim_name(&dataset.name_any());
        let managed = inventory
            .managed_claims
            .contains(&(namespace, claim.claim_name.clone()));
        if managed && claim.claim_name != own {
            findings.add(
                Rule::Provenance,
                "spec.source.persistentVolumeClaim.claimName",
                format!(
                    "`{}` is a claim Hygie manages (another dataset's volume, a workspace's home, outbox or copy, an export's snapshot or staged files): a dataset made from it would escape that data's classification, authorisation and retention",
                    super::quote(&claim.claim_name)
                ),
            );
        }
    }

    if let Some(s3) = spec.source.as_ref().and_then(|s| s.s3.as_ref()) {
        let declared = inventory
            .profile(&spec.hosting_profile)
            .map(|p| destinations(&p.spec.network.egress_destinations));
        check_egress(
            &mut findings,
            "spec.source.s3.egress",
            &s3.egress,
            declared.as_deref(),
        );
        super::export::check_store(
            &mut findings,
            Rule::Importer,
            "spec.source.s3",
            &s3.endpoint,
            &s3.bucket,
            &s3.prefix,
        );
    }

    let Some(profile) = inventory.profile(&spec.hosting_profile) else {
        findings.add(
            Rule::ProfileExists,
            "spec.hostingProfile",
            format!("HostingProfile `{}` does not exist", spec.hosting_profile),
        );
        return findings.into_vec();
    };

    if dataset.is_health_data() {
        if !has_valid_hds(profile, now) {
            findings.add(
                Rule::HdsCertified,
                "spec.hostingProfile",
                format!(
                    "{:?} data needs an HDS-certified host, and HostingProfile `{}` has no HDS certification valid today",
                    spec.classification,
                    profile.name_any()
                ),
            );
        }
        if profile.spec.storage.encryption.kind == EncryptionType::None {
            findings.add(
                Rule::Encryption,
                "spec.hostingProfile",
                format!(
                    "{:?} data needs encrypted storage, and HostingProfile `{}` has encryption type None",
                    spec.classification,
                    profile.name_any()
                ),
            );
        }
    }

    check_immunity(&mut findings, profile, &[dataset], now);

    if spec.source.as_ref().is_some_and(|s| s.s3.is_some()) {
        let images = &profile.spec.images;
        let usable = images
            .importer
            .as_deref()
            .is_some_and(|image| untrusted(image, &images.allowed_registries).is_empty());
        if !usable {
            findings.add(
                Rule::Importer,
                "spec.source.s3",
                format!(
                    "an S3 import runs the importer image of HostingProfile `{}`; set its spec.images.importer, pinned by digest, from an allowed registry",
                    profile.name_any()
                ),
            );
        }
    }
    super::export::check_dataset_export(&mut findings, dataset, inventory);
    findings.into_vec()
}
