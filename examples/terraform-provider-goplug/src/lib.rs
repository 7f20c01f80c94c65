//! The `goplug` provider: files on the local disk as resources
//! (`goplug_file`) and data sources (`goplug_file`), relative paths
//! resolved against the provider's `root`.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use goplug_terraform::cty::{AttributePath, Type, Value};
use goplug_terraform::schema::{Attribute, Schema};
use goplug_terraform::{
    ChangeRequest, ConfigureRequest, DataSource, Diagnostic, Diagnostics, Plan, PlanRequest,
    Provider, ProviderServer, Resource,
};
use sha2::{Digest, Sha256};

/// The provider address the debug line names (the `source` in a
/// configuration's `required_providers`).
pub const ADDRESS: &str = "localhost/goplug/goplug";

/// The provider, its resource and its data source, sharing the root.
pub fn server() -> ProviderServer {
    let root = Root::default();
    ProviderServer::new(FileProvider { root: root.clone() })
        .resource("goplug_file", FileResource { root: root.clone() })
        .data_source("goplug_file", FileDataSource { root })
}

/// The directory relative paths resolve against: the provider's `root`,
/// else the working directory. Set by `configure`.
#[derive(Clone, Debug, Default)]
struct Root(Arc<RwLock<Option<PathBuf>>>);

impl Root {
    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            return path.to_owned();
        }
        match self.0.read().ok().and_then(|root| root.clone()) {
            Some(root) => root.join(path),
            None => path.to_owned(),
        }
    }
}

#[derive(Debug)]
struct FileProvider {
    root: Root,
}

impl Provider for FileProvider {
    fn schema(&self) -> Schema {
        Schema::new().attribute(Attribute::new("root", Type::String).optional().description(
            "The directory relative paths resolve against (default: the working directory).",
        ))
    }

    async fn configure(&self, request: ConfigureRequest<'_>) -> Diagnostics {
        let root = request
            .config
            .get("root")
            .and_then(Value::as_str)
            .map(PathBuf::from);
        if let Ok(mut slot) = self.root.0.write() {
            *slot = root;
        }
        Diagnostics::new()
    }
}

fn file_schema() -> Schema {
    Schema::new()
        .description("A file on the local disk.")
        .attribute(
            Attribute::new("path", Type::String)
                .required()
                .requires_replace()
                .description(
                    "The file's path; relative paths resolve against the provider's root.",
                ),
        )
        .attribute(
            Attribute::new("content", Type::String)
                .required()
                .description("The file's content."),
        )
        .attribute(
            Attribute::new("id", Type::String)
                .computed()
                .description("The path."),
        )
        .attribute(
            Attribute::new("sha256", Type::String)
                .computed()
                .description("The hex SHA-256 of the content."),
        )
}

fn sha256_hex(content: &str) -> String {
    Sha256::digest(content.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The state of the file at `path` with `content`.
fn state(path: &str, content: &str) -> Value {
    Value::object([
        ("path", path.into()),
        ("content", content.into()),
        ("id", path.into()),
        ("sha256", sha256_hex(content).into()),
    ])
}

fn path_error(summary: &str, path: &Path, e: &std::io::Error) -> Diagnostics {
    Diagnostic::error(summary, format!("{}: {e}", path.display()))
        .at(AttributePath::attribute("path"))
        .into()
}

/// The text of a configuration attribute that must be a known string.
fn text<'a>(value: &'a Value, name: &str) -> Result<&'a str, Diagnostics> {
    value.get(name).and_then(Value::as_str).ok_or_else(|| {
        Diagnostic::error(
            format!("Missing {name}"),
            format!("`{name}` must be a known string."),
        )
        .at(AttributePath::attribute(name))
        .into()
    })
}

/// Reads a file as UTF-8: `None` when it does not exist.
async fn read_file(path: &Path) -> Result<Option<String>, Diagnostics> {
    match tokio::fs::read(path).await {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
            Diagnostic::error("File is not UTF-8", path.display().to_string())
                .at(AttributePath::attribute("path"))
                .into()
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(path_error("Cannot read the file", path, &e)),
    }
}

async fn write_file(path: &Path, content: &str) -> Result<(), Diagnostics> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| path_error("Cannot create the file's directory", path, &e))?;
    }
    tokio::fs::write(path, content)
        .await
        .map_err(|e| path_error("Cannot write the file", path, &e))
}

/// An empty `path` is refused where it is written.
fn validate_path(config: &Value) -> Diagnostics {
    let mut diags = Diagnostics::new();
    if config.get("path").and_then(Value::as_str) == Some("") {
        diags.push(
            Diagnostic::error("Empty path", "`path` must name a file.")
                .at(AttributePath::attribute("path")),
        );
    }
    diags
}

#[derive(Debug)]
struct FileResource {
    root: Root,
}

impl Resource for FileResource {
    fn schema(&self) -> Schema {
        file_schema()
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        validate_path(config)
    }

    /// The ID is the path, known as soon as the path is.
    async fn modify_plan(&self, request: PlanRequest<'_>, plan: &mut Plan) -> Diagnostics {
        if let (Some(path), Value::Object(planned)) = (
            request.config.get("path").filter(|p| p.is_known()),
            &mut plan.planned_state,
        ) {
            planned.insert("id".to_owned(), path.clone());
        }
        Diagnostics::new()
    }

    async fn create(&self, request: ChangeRequest<'_>) -> Result<Value, Diagnostics> {
        let path = text(request.planned_state, "path")?;
        let content = text(request.planned_state, "content")?;
        write_file(&self.root.resolve(path), content).await?;
        Ok(state(path, content))
    }

    async fn read(&self, current: &Value) -> Result<Option<Value>, Diagnostics> {
        let path = text(current, "path")?;
        Ok(read_file(&self.root.resolve(path))
            .await?
            .map(|content| state(path, &content)))
    }

    async fn update(&self, request: ChangeRequest<'_>) -> Result<Value, Diagnostics> {
        self.create(request).await
    }

    async fn delete(&self, current: &Value) -> Result<(), Diagnostics> {
        let path = self.root.resolve(text(current, "path")?);
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(path_error("Cannot delete the file", &path, &e))
            }
            _ => Ok(()),
        }
    }

    async fn import(&self, id: &str) -> Result<Value, Diagnostics> {
        match read_file(&self.root.resolve(id)).await? {
            Some(content) => Ok(state(id, &content)),
            None => Err(Diagnostic::error(
                "Cannot import a missing file",
                format!("No file at {id}."),
            )
            .into()),
        }
    }
}

#[derive(Debug)]
struct FileDataSource {
    root: Root,
}

impl DataSource for FileDataSource {
    fn schema(&self) -> Schema {
        Schema::new()
            .description("Reads a file on the local disk.")
            .attribute(
                Attribute::new("path", Type::String)
                    .required()
                    .description("The file's path."),
            )
            .attribute(
                Attribute::new("content", Type::String)
                    .computed()
                    .description("The file's content."),
            )
            .attribute(
                Attribute::new("sha256", Type::String)
                    .computed()
                    .description("The hex SHA-256 of the content."),
            )
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        validate_path(config)
    }

    async fn read(&self, config: &Value) -> Result<Value, Diagnostics> {
        let path = text(config, "path")?;
        let resolved = self.root.resolve(path);
        match read_file(&resolved).await? {
            Some(content) => Ok(Value::object([
                ("path", path.into()),
                ("sha256", sha256_hex(&content).into()),
                ("content", content.into()),
            ])),
            None => Err(
                Diagnostic::error("No such file", resolved.display().to_string())
                    .at(AttributePath::attribute("path"))
                    .into(),
            ),
        }
    }
}
