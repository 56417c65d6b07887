//! The `hygie.io/v1alpha1` API: one module per kind, plus what they share.

pub mod common;
pub mod conditions;
pub mod dataset;
pub mod export;
pub mod hosting_profile;
pub mod session;
pub mod workspace;

pub use common::{Access, Classification, Date, EgressPort, EgressRule, Protocol};
pub use dataset::{Dataset, DatasetSpec};
pub use export::{ExportRequest, ExportReview};
pub use hosting_profile::{HostingProfile, HostingProfileSpec};
pub use session::Session;
pub use workspace::{Workspace, WorkspaceSpec};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The CRDs of every kind, in the order they should be applied.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        HostingProfile::crd(),
        Dataset::crd(),
        Workspace::crd(),
        ExportRequest::crd(),
        ExportReview::crd(),
        Session::crd(),
    ]
}
