//! Reading Hygie objects from files: multi-document YAML (or JSON), decoded into the typed
//! kinds with the same strictness as the API server. Bad input is an error naming the file,
//! the document and the field; it never panics.

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    path::{Path, PathBuf},
};

use kube::{
    CustomResourceExt, Resource, ResourceExt,
    core::cel::{CompiledSchema, Validator, compile_schema},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    api::{Dataset, ExportRequest, ExportReview, HostingProfile, Workspace},
    build::labels,
    list_types,
    policy::{Inventory, ObjectKey},
};

const API_VERSION: &str = "hygie.io/v1alpha1";

/// The largest file read: a generated manifest of ten thousand workspaces is a tenth of it.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// How YAML is read. Merge keys (`<<`) are refused: `hygie check` and kubectl would resolve
/// them differently, and a gate must judge what the cluster receives. A file may hold a
/// generated manifest of many documents, while alias bombs stay bounded by the default alias
/// limits.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        merge_keys: serde_saphyr::options::MergeKeyPolicy::Error,
        budget: serde_saphyr::budget! {
            max_documents: 100_000,
            max_nodes: 10_000_000,
            max_events: 25_000_000,
        },
    }
}

/// What a document of each kind is checked against, compiled once per load: the CRD's schema
/// and its CEL rules (compiling them per document made `check` twenty times slower than a
/// plain schema validator on a generated manifest).
struct Compiled {
    schema: jsonschema::Validator,
    /// The schema itself, for what the validator does not read (list types).
    raw: Value,
    cel: CompiledSchema,
    namespaced: bool,
}

#[derive(Default)]
struct Schemas(HashMap<String, Compiled>);

impl Schemas {
    fn of<K: Resource<DynamicType = ()> + CustomResourceExt>(
        &mut self,
    ) -> Result<&Compiled, String> {
        let kind = K::kind(&()).into_owned();
        if !self.0.contains_key(&kind) {
            let schema = openapi_schema::<K>();
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .should_validate_formats(true)
                .build(&schema)
                .map_err(|e| format!("{kind}: the CRD schema cannot be used: {e}"))?;
            let cel = compile_schema(&schema);
            self.0.insert(
                kind.clone(),
                Compiled {
                    schema: validator,
                    raw: schema.clone(),
                    cel,
                    namespaced: K::crd().spec.scope == "Namespaced",
                },
            );
        }
        Ok(&self.0[&kind])
    }
}

/// The Hygie objects read from a set of files.
#[derive(Clone, Debug, Default)]
pub struct Bundle {
    pub inventory: Inventory,
    pub workspaces: Vec<Workspace>,
    /// Reviews of export requests: checked by the API server's schema, counted by the operator.
    pub reviews: Vec<ExportReview>,
}

/// Input that cannot be read as Hygie objects.
#[derive(Debug, thiserror::Error)]
pub struct LoadError {
    pub file: PathBuf,
    /// 1-based index of the document in the file, when the file itself could be parsed.
    pub document: Option<usize>,
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = match self.file.as_path() == Path::new(STDIN) {
            true => "standard input".into(),
            false => self.file.display().to_string(),
        };
        match self.document {
            Some(document) => write!(f, "{file} document {document}: {}", self.reason),
            None => write!(f, "{file}: {}", self.reason),
        }
    }
}

/// The path that names standard input, as kubectl and kustomize name it: `hygie check -f -`
/// reads what `kustomize build` or `helm template` writes.
pub const STDIN: &str = "-";

impl Bundle {
    /// Reads every `.yaml`, `.yml` and `.json` file under `paths`, directories recursively,
    /// in name order.
    pub fn load(paths: &[PathBuf]) -> Result<Bundle, LoadError> {
        let mut files = Vec::new();
        for path in paths {
            collect_files(path, &mut files)?;
        }
        Bundle::of(files.iter().zip(read_all(&files)))
    }

    /// The objects of `text`, one file's content, named `file` in errors: what `hygie check`
    /// reads of one file, without the file system (the bundle fuzzer feeds it).
    pub fn read(file: &Path, text: &str) -> Result<Bundle, LoadError> {
        let objects = read_text(file, text, &mut Schemas::default());
        Bundle::of([(&file.to_owned(), objects)])
    }

    /// The bundle of the objects read from each file, refusing an object defined twice.
    fn of<'a>(
        files: impl IntoIterator<Item = (&'a PathBuf, FileObjects)>,
    ) -> Result<Bundle, LoadError> {
        let mut bundle = Bundle::default();
        let mut seen = BTreeSet::new();
        for (file, objects) in files {
            for (index, object) in objects? {
                let key = object.key();
                if !seen.insert(key.clone()) {
                    return Err(LoadError {
                        file: file.clone(),
                        document: Some(index + 1),
                        reason: format!("{key} is defined twice"),
                    });
                }
                bundle.add(object);
            }
        }
        bundle.inventory.managed_claims = bundle.claims();
        Ok(bundle)
    }

    fn add(&mut self, object: Object) {
        match object {
            Object::Profile(profile) => self.inventory.add_profile(*profile),
            Object::Dataset(dataset) => self.inventory.add_dataset(*dataset),
            Object::Workspace(workspace) => self.workspaces.push(*workspace),
            Object::ExportRequest(request) => self.inventory.export_requests.push(*request),
            Object::ExportReview(review) => self.reviews.push(*review),
        }
    }

    /// The claims the bundle's datasets, workspaces and export requests would have Hygie
    /// create: datasets' volumes, homes, outboxes, copies, snapshots and staged files.
    fn claims(&self) -> BTreeSet<(String, String)> {
        let datasets = self
            .inventory
            .datasets
            .keys()
            .map(|(namespace, name)| (namespace.clone(), labels::dataset_claim_name(name)));
        let workspaces = self.workspaces.iter().flat_map(|w| {
            let namespace = w.namespace().unwrap_or_default();
            let name = w.name_any();
            let copies = w
                .spec
                .datasets
                .iter()
                .map(|m| labels::dataset_copy_claim_name(&name, &m.name));
            [
                labels::home_claim_name(&name),
                labels::outbox_claim_name(&name),
            ]
            .into_iter()
            .chain(copies)
            .map(move |claim| (namespace.clone(), claim))
            .collect::<Vec<_>>()
        });
        let exports = self.inventory.export_requests.iter().flat_map(|r| {
            let namespace = r.namespace().unwrap_or_default();
            let names = crate::build::ExportNames::of(&r.name_any());
            [names.snapshot, names.staged].map(|claim| (namespace.clone(), claim))
        });
        datasets.chain(workspaces).chain(exports).collect()
    }
}

/// One Hygie object read from a file.
enum Object {
    Profile(Box<HostingProfile>),
    Dataset(Box<Dataset>),
    Workspace(Box<Workspace>),
    ExportRequest(Box<ExportRequest>),
    ExportReview(Box<ExportReview>),
}

impl Object {
    fn key(&self) -> ObjectKey {
        match self {
            Object::Profile(profile) => ObjectKey::of(profile.as_ref()),
            Object::Dataset(dataset) => ObjectKey::of(dataset.as_ref()),
            Object::Workspace(workspace) => ObjectKey::of(workspace.as_ref()),
            Object::ExportRequest(request) => ObjectKey::of(request.as_ref()),
            Object::ExportReview(review) => ObjectKey::of(review.as_ref()),
        }
    }
}

/// The objects of one file, each with the index of its document, or why the file is refused.
type FileObjects = Result<Vec<(usize, Object)>, LoadError>;

/// The objects of every file, in the files' order, each file read on one of the machine's
/// cores: a generated manifest of thousands of documents is checked in parallel.
fn read_all(files: &[PathBuf]) -> Vec<FileObjects> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(files.len())
        .max(1);
    let mut results: Vec<(usize, FileObjects)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                scope.spawn(move || {
                    let mut schemas = Schemas::default();
                    files
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % threads == worker)
                        .map(|(i, file)| (i, read_file(file, &mut schemas)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("reading a file does not panic"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, result)| result).collect()
}

/// The objects of one file, with the index of their document.
fn read_file(file: &Path, schemas: &mut Schemas) -> FileObjects {
    let text = read_regular_file(file).map_err(|reason| LoadError {
        file: file.to_owned(),
        document: None,
        reason,
    })?;
    read_text(file, &text, schemas)
}

/// The objects of `text`, the content of `file`, with the index of their document.
fn read_text(file: &Path, text: &str, schemas: &mut Schemas) -> FileObjects {
    let documents: Vec<Value> = serde_saphyr::from_multiple_with_options(text, yaml_options())
        .map_err(|e| LoadError {
            file: file.to_owned(),
            document: None,
            reason: brief(&format!("not valid YAML: {e}")),
        })?;
    let mut objects = Vec::with_capacity(documents.len());
    for (index, document) in documents.into_iter().enumerate() {
        if document.is_null() {
            continue;
        }
        let object = read_document(document, schemas).map_err(|reason| LoadError {
            file: file.to_owned(),
            document: Some(index + 1),
            reason: brief(&reason),
        })?;
        objects.push((index, object));
    }
    Ok(objects)
}

fn read_document(document: Value, schemas: &mut Schemas) -> Result<Object, String> {
    let field = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let api_version = field("apiVersion").ok_or("apiVersion is missing")?;
    let kind = field("kind").ok_or("kind is missing")?;
    if api_version != API_VERSION {
        return Err(format!(
            "apiVersion `{api_version}` is not {API_VERSION}: only Hygie objects are read"
        ));
    }
    match kind.as_str() {
        "HostingProfile" => Ok(Object::Profile(Box::new(decode(document, schemas)?))),
        "Dataset" => Ok(Object::Dataset(Box::new(decode(document, schemas)?))),
        "Workspace" => Ok(Object::Workspace(Box::new(decode(document, schemas)?))),
        "ExportRequest" => Ok(Object::ExportRequest(Box::new(decode(document, schemas)?))),
        "ExportReview" => Ok(Object::ExportReview(Box::new(decode(document, schemas)?))),
        other => Err(format!(
            "kind `{other}` is not a Hygie kind (HostingProfile, Dataset, Workspace, ExportRequest, ExportReview)"
        )),
    }
}

/// Decodes one object as the API server would accept it: every field known and well typed,
/// names present, and the CRD's CEL rules satisfied.
fn decode<K>(document: Value, schemas: &mut Schemas) -> Result<K, String>
where
    K: DeserializeOwned + Resource<DynamicType = ()> + CustomResourceExt,
{
    let kind = describe::<K>(&document);
    // One pass reads the object, the fields it does not know and where decoding failed; the
    // failure is reported after the schema's, which says more.
    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let decoded: Result<K, _> = serde_ignored::deserialize(
        serde_path_to_error::Deserializer::new(&document, &mut track),
        |path| {
            let path = path.to_string();
            // The derived root type reads apiVersion and kind as a header, not as fields.
            if path != "apiVersion" && path != "kind" {
                unknown.push(path);
            }
        },
    );
    if let Some(path) = unknown.first() {
        return Err(format!("{kind}: unknown field `{path}`"));
    }
    let compiled = schemas.of::<K>()?;
    check_schema(&kind, &compiled.schema, &document)?;
    let duplicates = list_types::duplicates(&compiled.raw, &document);
    if !duplicates.is_empty() {
        return Err(format!("{kind}: {}", duplicates.join("; ")));
    }
    let object: K = decoded.map_err(|e| {
        let path = track.path().to_string();
        match path.as_str() {
            "." => format!("{kind}: {e}"),
            _ => format!("{kind}: {path}: {e}"),
        }
    })?;
    let key = ObjectKey::of(&object);
    if object.meta().name.as_deref().is_none_or(str::is_empty) {
        return Err(format!("{kind}: metadata.name is required"));
    }
    let namespaced = compiled.namespaced;
    if namespaced && object.namespace().is_none_or(|ns| ns.is_empty()) {
        return Err(format!(
            "{key}: metadata.namespace is required, so that the result does not depend on a kubectl context"
        ));
    }
    if !namespaced && object.namespace().is_some() {
        return Err(format!(
            "{key}: a {kind} is cluster-scoped and has no metadata.namespace"
        ));
    }
    check_cel(&key, &compiled.cel, &document)?;
    Ok(object)
}

/// `Kind/namespace/name` as far as the raw document tells, to name it in errors.
fn describe<K: Resource<DynamicType = ()>>(document: &Value) -> String {
    let meta = |field: &str| {
        document
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
    };
    [Some(K::kind(&()).as_ref()), meta("namespace"), meta("name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/")
}

/// The OpenAPI schema of the kind's CRD, as the API server validates against it.
fn openapi_schema<K: CustomResourceExt>() -> Value {
    K::crd()
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .map(|s| serde_json::to_value(s).expect("schemas serialize to JSON"))
        .unwrap_or_default()
}

/// Checks types, required fields, enums, patterns, lengths, ranges and formats against the
/// CRD schema. Explicit nulls are dropped first, as the API server does for nullable fields.
fn check_schema(
    kind: &str,
    validator: &jsonschema::Validator,
    document: &Value,
) -> Result<(), String> {
    let cleaned;
    let document = if has_nulls(document) {
        cleaned = without_nulls(document.clone());
        &cleaned
    } else {
        document
    };
    let reasons: Vec<String> = validator
        .iter_errors(document)
        .map(|e| {
            let path = e
                .instance_path()
                .to_string()
                .trim_start_matches('/')
                .replace('/', ".");
            let hint = match (e.instance().as_ref(), e.to_string().contains("\"string\"")) {
                (Value::Bool(_), true) => " (YAML reads unquoted yes, no, on, off, y and n, NO among them, as booleans: quote the value)",
                _ => "",
            };
            format!("{}: {}{hint}", if path.is_empty() { "." } else { &path }, brief(&e.to_string()))
        })
        .collect();
    match reasons.is_empty() {
        true => Ok(()),
        false => Err(format!("{kind}: {}", reasons.join("; "))),
    }
}

fn has_nulls(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.values().any(has_nulls),
        Value::Array(items) => items.iter().any(has_nulls),
        _ => false,
    }
}

fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// Evaluates the CRD's `x-kubernetes-validations` rules, which the API server would enforce.
fn check_cel(key: &ObjectKey, compiled: &CompiledSchema, document: &Value) -> Result<(), String> {
    Validator::new()
        .validate_compiled(compiled, document, None)
        .map_err(|errors| {
            let reasons: Vec<String> = errors
                .into_vec()
                .into_iter()
                .map(|e| match e.field_path.as_str() {
                    // A rule on the whole object: it names its field in its message.
                    "" => e.message,
                    path => format!("{path}: {}", e.message),
                })
                .collect();
            format!("{key}: {}", reasons.join("; "))
        })
}

/// At most a few hundred characters of an error, which may quote a crafted value.
fn brief(text: &str) -> String {
    const SHOWN: usize = 300;
    match text.char_indices().nth(SHOWN) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}... ({} bytes in all)", &text[..end], text.len()),
    }
}

/// Reads a regular file, or standard input for [`STDIN`], of at most [`MAX_FILE_BYTES`]: a FIFO
/// would hang the gate and a link to a device would grow its memory without bound.
fn read_regular_file(path: &Path) -> Result<String, String> {
    if path == Path::new(STDIN) {
        return read_at_most(std::io::stdin().lock());
    }
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !metadata.is_file() {
        return Err("not a regular file (a device, a FIFO or a socket is never read)".into());
    }
    read_at_most(std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?)
}

/// At most [`MAX_FILE_BYTES`] of UTF-8 text from `input`.
fn read_at_most(input: impl std::io::Read) -> Result<String, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    input
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "larger than {} MiB: split it",
            MAX_FILE_BYTES >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".into())
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let error = |e: std::io::Error| LoadError {
        file: path.to_owned(),
        document: None,
        reason: e.to_string(),
    };
    if path == Path::new(STDIN) {
        files.push(path.to_owned());
        Ok(())
    } else if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(error)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(error)?;
        entries.sort();
        for entry in entries {
            let manifest = entry
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json");
            if entry.is_dir() || manifest {
                collect_files(&entry, files)?;
            }
        }
        Ok(())
    } else if path.exists() {
        files.push(path.to_owned());
        Ok(())
    } else {
        Err(LoadError {
            file: path.to_owned(),
            document: None,
            reason: "no such file or directory".into(),
        })
    }
}
