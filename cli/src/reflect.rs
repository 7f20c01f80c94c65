//! gRPC server reflection, client side: lists a plugin's services and
//! fetches their file descriptors into a `prost_reflect::DescriptorPool`.
//! Go plugins answer `grpc.reflection.v1alpha` (grpc-go registers it);
//! goplug plugins answer both it and `grpc.reflection.v1`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use goplug::host::Channel;
use prost::Message as _;
use prost_reflect::DescriptorPool;
use prost_types::FileDescriptorProto;
use tonic::{Code, Status};

/// Bound on the whole reflection conversation.
const REFLECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// What a plugin's reflection service said.
#[derive(Debug)]
pub(crate) struct Reflected {
    /// The reflection API that answered.
    pub(crate) api: &'static str,
    /// Service names as listed, sorted.
    pub(crate) services: Vec<String>,
    /// The descriptors of every listed service that could be resolved.
    pub(crate) pool: DescriptorPool,
    /// Services whose descriptors could not be had, with why.
    pub(crate) unresolved: Vec<(String, String)>,
}

/// Why reflection gave nothing.
#[derive(Debug)]
pub(crate) enum ReflectError {
    /// The plugin serves neither reflection API.
    Unavailable,
    /// The plugin answered, but not usably.
    Failed(String),
    /// The plugin speaks net/rpc, which has no reflection.
    NetRpc,
}

impl std::fmt::Display for ReflectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable => f.write_str(
                "the plugin serves no gRPC reflection (neither grpc.reflection.v1alpha nor v1)",
            ),
            Self::Failed(reason) => write!(f, "gRPC reflection failed: {reason}"),
            Self::NetRpc => {
                f.write_str("not available: the plugin speaks net/rpc, which has no reflection")
            }
        }
    }
}

/// One question of the reflection protocol.
#[derive(Debug)]
enum Ask {
    ListServices,
    Symbol(String),
    File(String),
}

/// One answer.
#[derive(Debug)]
enum Answer {
    Services(Vec<String>),
    Files(Vec<Vec<u8>>),
    Error(Code, String),
}

/// The same conversation over either API's generated types.
macro_rules! conversation {
    ($name:ident, $api:ident, $api_name:literal) => {
        struct $name {
            requests:
                tokio::sync::mpsc::Sender<tonic_reflection::pb::$api::ServerReflectionRequest>,
            responses:
                tonic::codec::Streaming<tonic_reflection::pb::$api::ServerReflectionResponse>,
        }

        impl $name {
            const API: &'static str = $api_name;

            fn request(ask: Ask) -> tonic_reflection::pb::$api::ServerReflectionRequest {
                use tonic_reflection::pb::$api::server_reflection_request::MessageRequest;
                let message = match ask {
                    Ask::ListServices => MessageRequest::ListServices(String::new()),
                    Ask::Symbol(symbol) => MessageRequest::FileContainingSymbol(symbol),
                    Ask::File(file) => MessageRequest::FileByFilename(file),
                };
                tonic_reflection::pb::$api::ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(message),
                }
            }

            /// Opens the stream with the first question, which is also
            /// what shows whether the API is served.
            async fn open(channel: Channel, first: Ask) -> Result<(Self, Answer), Status> {
                use tonic_reflection::pb::$api::server_reflection_client::ServerReflectionClient;
                let (requests, receiver) = tokio::sync::mpsc::channel(4);
                requests
                    .send(Self::request(first))
                    .await
                    .map_err(|_| Status::internal("reflection request stream closed"))?;
                let mut client = ServerReflectionClient::new(channel)
                    .max_decoding_message_size(goplug::grpc::HOST_MAX_MESSAGE_SIZE);
                let responses = client
                    .server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(receiver))
                    .await?
                    .into_inner();
                let mut conversation = Self {
                    requests,
                    responses,
                };
                let answer = conversation.receive().await?;
                Ok((conversation, answer))
            }

            async fn ask(&mut self, ask: Ask) -> Result<Answer, Status> {
                self.requests
                    .send(Self::request(ask))
                    .await
                    .map_err(|_| Status::internal("reflection request stream closed"))?;
                self.receive().await
            }

            async fn receive(&mut self) -> Result<Answer, Status> {
                use tonic_reflection::pb::$api::server_reflection_response::MessageResponse;
                let response = self
                    .responses
                    .message()
                    .await?
                    .ok_or_else(|| Status::unavailable("the reflection stream ended"))?;
                Ok(match response.message_response {
                    Some(MessageResponse::ListServicesResponse(list)) => {
                        Answer::Services(list.service.into_iter().map(|s| s.name).collect())
                    }
                    Some(MessageResponse::FileDescriptorResponse(files)) => {
                        Answer::Files(files.file_descriptor_proto)
                    }
                    Some(MessageResponse::ErrorResponse(error)) => {
                        Answer::Error(Code::from(error.error_code), error.error_message)
                    }
                    _ => Answer::Error(Code::Internal, "unexpected reflection answer".to_owned()),
                })
            }
        }

        impl Conversation for $name {
            async fn ask(&mut self, ask: Ask) -> Result<Answer, Status> {
                $name::ask(self, ask).await
            }
        }
    };
}

trait Conversation {
    async fn ask(&mut self, ask: Ask) -> Result<Answer, Status>;
}

conversation!(V1Alpha, v1alpha, "grpc.reflection.v1alpha");
conversation!(V1, v1, "grpc.reflection.v1");

/// Lists the plugin's services and resolves their descriptors: v1alpha
/// first (what Go plugins serve), then v1.
///
/// # Errors
///
/// [`ReflectError::Unavailable`] when neither API is served.
pub(crate) async fn reflect(channel: Channel) -> Result<Reflected, ReflectError> {
    tokio::time::timeout(REFLECTION_TIMEOUT, reflect_unbounded(channel))
        .await
        .map_err(|_| {
            ReflectError::Failed(format!(
                "no answer within {}",
                crate::launch::human_duration(REFLECTION_TIMEOUT)
            ))
        })?
}

async fn reflect_unbounded(channel: Channel) -> Result<Reflected, ReflectError> {
    match V1Alpha::open(channel.clone(), Ask::ListServices).await {
        Ok((conversation, first)) => resolve(V1Alpha::API, conversation, first).await,
        Err(status) if status.code() == Code::Unimplemented => {
            match V1::open(channel, Ask::ListServices).await {
                Ok((conversation, first)) => resolve(V1::API, conversation, first).await,
                Err(status) if status.code() == Code::Unimplemented => {
                    Err(ReflectError::Unavailable)
                }
                Err(status) => Err(ReflectError::Failed(status_text(&status))),
            }
        }
        Err(status) => Err(ReflectError::Failed(status_text(&status))),
    }
}

fn status_text(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

async fn resolve(
    api: &'static str,
    mut conversation: impl Conversation,
    first: Answer,
) -> Result<Reflected, ReflectError> {
    let mut services = match first {
        Answer::Services(services) => services,
        Answer::Error(code, message) => {
            return Err(ReflectError::Failed(format!(
                "listing services: {code:?}: {message}"
            )));
        }
        Answer::Files(_) => {
            return Err(ReflectError::Failed(
                "listing services gave files".to_owned(),
            ));
        }
    };
    services.sort();
    services.dedup();

    let failed = |status: Status| ReflectError::Failed(status_text(&status));
    let mut files: BTreeMap<String, FileDescriptorProto> = BTreeMap::new();
    let mut unresolved = Vec::new();
    for service in &services {
        match conversation
            .ask(Ask::Symbol(service.clone()))
            .await
            .map_err(failed)?
        {
            Answer::Files(encoded) => add_files(&mut files, encoded)?,
            Answer::Error(code, message) => {
                unresolved.push((service.clone(), format!("{code:?}: {message}")));
            }
            Answer::Services(_) => {
                unresolved.push((service.clone(), "unexpected answer".to_owned()));
            }
        }
    }

    // Dependencies the server did not send with the files: ask by name,
    // unless they are well-known types the pool has anyway.
    let known = DescriptorPool::global();
    let mut asked = BTreeSet::new();
    loop {
        let missing: Vec<String> = files
            .values()
            .flat_map(|file| file.dependency.iter())
            .filter(|dep| !files.contains_key(*dep) && known.get_file_by_name(dep).is_none())
            .filter(|dep| !asked.contains(*dep))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        for dep in missing {
            asked.insert(dep.clone());
            if let Answer::Files(encoded) = conversation
                .ask(Ask::File(dep.clone()))
                .await
                .map_err(failed)?
            {
                add_files(&mut files, encoded)?;
            }
        }
    }

    let mut pool = DescriptorPool::global();
    let all: Vec<FileDescriptorProto> = files.into_values().collect();
    if let Err(error) = pool.add_file_descriptor_protos(all.clone()) {
        // One bad file must not hide the others: add what can be added.
        let mut pending = all;
        loop {
            let before = pending.len();
            pending.retain(|file| pool.add_file_descriptor_proto(file.clone()).is_err());
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        for file in pending {
            for service in &file.service {
                let name = qualified(file.package(), service.name());
                unresolved.push((name, format!("its descriptor is unusable: {error}")));
            }
        }
    }
    for service in &services {
        if pool.get_service_by_name(service).is_none()
            && !unresolved.iter().any(|(name, _)| name == service)
        {
            unresolved.push((
                service.clone(),
                "its file descriptor does not define it".to_owned(),
            ));
        }
    }
    Ok(Reflected {
        api,
        services,
        pool,
        unresolved,
    })
}

fn add_files(
    files: &mut BTreeMap<String, FileDescriptorProto>,
    encoded: Vec<Vec<u8>>,
) -> Result<(), ReflectError> {
    for bytes in encoded {
        let file = FileDescriptorProto::decode(bytes.as_slice())
            .map_err(|e| ReflectError::Failed(format!("a file descriptor does not decode: {e}")))?;
        files.entry(file.name().to_owned()).or_insert(file);
    }
    Ok(())
}

fn qualified(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}.{name}")
    }
}
