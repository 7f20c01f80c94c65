//! Dynamic gRPC calls: a request built from JSON and the reflected
//! descriptors, sent over the plugin's channel with a codec for
//! `prost_reflect::DynamicMessage`, the response turned back into JSON.

use std::time::Duration;

use goplug::host::Channel;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions,
};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Status};

use crate::error::CliError;

/// A tonic codec for messages known only at run time.
#[derive(Clone, Debug)]
pub(crate) struct DynamicCodec {
    response: MessageDescriptor,
}

impl DynamicCodec {
    pub(crate) fn new(response: MessageDescriptor) -> Self {
        Self { response }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.response.clone())
    }
}

/// Encodes any dynamic message.
#[derive(Debug)]
pub(crate) struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the request: {e}")))
    }
}

/// Decodes messages of one type.
#[derive(Debug)]
pub(crate) struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| {
                Status::internal(format!(
                    "the response does not decode as {}: {e}",
                    self.0.full_name()
                ))
            })
    }
}

/// Finds `pkg.Service/Method` (or `pkg.Service.Method`) in the pool.
///
/// # Errors
///
/// A usage error naming what exists.
pub(crate) fn find_method(
    pool: &DescriptorPool,
    services: &[String],
    name: &str,
) -> Result<MethodDescriptor, CliError> {
    let name = name.trim_start_matches('/');
    let split = name
        .rsplit_once('/')
        .or_else(|| name.rsplit_once('.'))
        .filter(|(service, method)| !service.is_empty() && !method.is_empty());
    let Some((service_name, method_name)) = split else {
        return Err(CliError::usage(format!(
            "{name:?} is not a method name: write it as package.Service/Method (goplug inspect lists them)"
        )));
    };
    let Some(service) = pool.get_service_by_name(service_name) else {
        return Err(CliError::usage(format!(
            "the plugin has no service {service_name:?}; it serves {} (goplug inspect lists their methods)",
            list_or_none(services)
        )));
    };
    service
        .methods()
        .find(|method| method.name() == method_name)
        .ok_or_else(|| {
            let methods: Vec<String> = service.methods().map(|m| m.name().to_owned()).collect();
            CliError::usage(format!(
                "service {service_name} has no method {method_name:?}; its methods are {}",
                list_or_none(&methods)
            ))
        })
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Builds the request message from JSON (protobuf's JSON mapping).
///
/// # Errors
///
/// A usage error that names the message type and its fields.
pub(crate) fn request_from_json(
    descriptor: &MessageDescriptor,
    json: &str,
) -> Result<DynamicMessage, CliError> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let message = DynamicMessage::deserialize(descriptor.clone(), &mut deserializer)
        .and_then(|message| deserializer.end().map(|()| message))
        .map_err(|e| {
            let fields: Vec<String> = descriptor
                .fields()
                .map(|f| format!("{} ({})", f.json_name(), crate::inspect::field_type(&f)))
                .collect();
            CliError::usage(format!(
                "the request JSON does not fit {}: {e}; its fields are {} (bytes are base64)",
                descriptor.full_name(),
                list_or_none(&fields)
            ))
        })?;
    Ok(message)
}

/// A message as protobuf JSON.
pub(crate) fn message_to_json(message: &DynamicMessage, emit_defaults: bool) -> serde_json::Value {
    let options = SerializeOptions::new().skip_default_fields(!emit_defaults);
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .unwrap_or_else(|e| serde_json::json!({ "@unprintable": e.to_string() }))
}

/// What a call gave.
#[derive(Debug)]
pub(crate) struct CallOutcome {
    pub(crate) responses: Vec<DynamicMessage>,
    pub(crate) error: Option<Status>,
}

/// Calls a unary or server-streaming method; `each` sees every response
/// as it arrives, and ends a stream early by returning false.
///
/// # Errors
///
/// A usage error for client- or bidi-streaming methods.
pub(crate) async fn invoke(
    channel: Channel,
    method: &MethodDescriptor,
    request: DynamicMessage,
    timeout: Option<Duration>,
    mut each: impl FnMut(&DynamicMessage) -> bool,
) -> Result<CallOutcome, CliError> {
    if method.is_client_streaming() {
        return Err(CliError::usage(format!(
            "{} is a client-streaming method: goplug call sends unary and server-streaming calls only",
            method.full_name()
        )));
    }
    let path: PathAndQuery = format!("/{}/{}", method.parent_service().full_name(), method.name())
        .parse()
        .map_err(|e| CliError::usage(format!("method path: {e}")))?;
    let codec = DynamicCodec::new(method.output());
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(goplug::grpc::HOST_MAX_MESSAGE_SIZE)
        .max_encoding_message_size(goplug::grpc::HOST_MAX_MESSAGE_SIZE);
    let mut request = tonic::Request::new(request);
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    let started = std::time::Instant::now();
    let mut responses = Vec::new();
    let call = async {
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("the plugin is not ready: {e}")))?;
        if method.is_server_streaming() {
            let mut stream = grpc
                .server_streaming(request, path, codec)
                .await?
                .into_inner();
            while let Some(message) = stream.message().await? {
                let more = each(&message);
                responses.push(message);
                if !more {
                    break;
                }
            }
        } else {
            let message = grpc.unary(request, path, codec).await?.into_inner();
            let _ = each(&message);
            responses.push(message);
        }
        Ok::<_, Status>(())
    };
    // The deadline travels with the request (grpc-timeout); this also
    // bounds a plugin that ignores it, keeping what a stream sent so far.
    let result = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, call)
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded(""))),
        None => call.await,
    };
    let mut error = result.err();
    // A plugin may end a stream at the deadline by resetting it, which
    // reads as a transport error: say what it is.
    if let (Some(timeout), Some(status)) = (timeout, &error)
        && started.elapsed() >= timeout
    {
        let ended = if status.message().is_empty() {
            String::new()
        } else {
            format!("; the plugin ended the call with: {}", status.message())
        };
        error = Some(Status::deadline_exceeded(format!(
            "no complete answer within the deadline of {} (raise --timeout, or 0 for none){ended}",
            crate::launch::human_duration(timeout),
        )));
    }
    Ok(CallOutcome { responses, error })
}

/// `google.rpc.Status`, the payload of `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// The gRPC status as JSON: code (name and number), message, details
/// (decoded where the pool knows the type, else base64).
pub(crate) fn status_to_json(status: &Status, pool: &DescriptorPool) -> serde_json::Value {
    serde_json::json!({
        "code": code_name(status.code()),
        "code_number": status.code() as i32,
        "message": status.message(),
        "details": status_details(status, pool),
    })
}

fn status_details(status: &Status, pool: &DescriptorPool) -> Vec<serde_json::Value> {
    use base64::Engine as _;
    if status.details().is_empty() {
        return Vec::new();
    }
    let Ok(rpc_status) = RpcStatus::decode(status.details()) else {
        return vec![serde_json::json!({
            "raw": base64::engine::general_purpose::STANDARD.encode(status.details()),
        })];
    };
    rpc_status
        .details
        .iter()
        .map(|any| {
            let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
            let decoded = pool
                .get_message_by_name(type_name)
                .and_then(|descriptor| {
                    DynamicMessage::decode(descriptor, any.value.as_slice()).ok()
                })
                .map(|message| message_to_json(&message, false));
            match decoded {
                Some(value) => serde_json::json!({ "@type": any.type_url, "value": value }),
                None => serde_json::json!({
                    "@type": any.type_url,
                    "base64": base64::engine::general_purpose::STANDARD.encode(&any.value),
                }),
            }
        })
        .collect()
}

/// gRPC's name of a code, as grpcurl and Go print it.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The one-line error for a failed RPC, with its details appended.
pub(crate) fn status_error(method: &str, status: &Status, pool: &DescriptorPool) -> CliError {
    let details = status_details(status, pool);
    let details = if details.is_empty() {
        String::new()
    } else {
        format!(" (details: {})", serde_json::Value::Array(details))
    };
    CliError::call(format!(
        "{method} failed: {} ({}): {}{details}",
        code_name(status.code()),
        status.code() as i32,
        status.message()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(goplug_example_kv::pb::FILE_DESCRIPTOR_SET).unwrap()
    }

    #[test]
    fn methods_are_found_in_both_spellings_and_misses_name_what_exists() {
        let pool = pool();
        let services = vec!["proto.KV".to_owned()];
        assert_eq!(
            find_method(&pool, &services, "proto.KV/Get")
                .unwrap()
                .name(),
            "Get"
        );
        assert_eq!(
            find_method(&pool, &services, "/proto.KV.Put")
                .unwrap()
                .name(),
            "Put"
        );
        let miss = find_method(&pool, &services, "proto.KV/Gett").unwrap_err();
        assert!(miss.message.contains("Get, Put"), "{}", miss.message);
        let miss = find_method(&pool, &services, "proto.Nope/Get").unwrap_err();
        assert!(miss.message.contains("proto.KV"), "{}", miss.message);
        assert!(find_method(&pool, &services, "Get").is_err());
    }

    #[test]
    fn json_round_trips_and_misfits_say_which_fields_exist() {
        let pool = pool();
        let put = pool.get_message_by_name("proto.PutRequest").unwrap();
        let message = request_from_json(&put, r#"{"key":"k","value":"aGk="}"#).unwrap();
        assert_eq!(
            message_to_json(&message, false),
            serde_json::json!({"key": "k", "value": "aGk="})
        );
        let error = request_from_json(&put, r#"{"kee":"k"}"#).unwrap_err();
        assert!(error.message.contains("key (string)"), "{}", error.message);
        assert!(error.message.contains("value (bytes)"), "{}", error.message);
        assert!(request_from_json(&put, "{").is_err());
        assert!(request_from_json(&put, r#"{"key":1}"#).is_err());
        let empty = pool.get_message_by_name("proto.GetResponse").unwrap();
        let value = message_to_json(&DynamicMessage::new(empty), true);
        assert_eq!(value, serde_json::json!({"value": ""}));
    }

    #[test]
    fn status_details_are_decoded() {
        let detail = prost_types::Any {
            type_url: "type.googleapis.com/proto.GetRequest".into(),
            value: {
                let pool = pool();
                let desc = pool.get_message_by_name("proto.GetRequest").unwrap();
                request_from_json(&desc, r#"{"key":"x"}"#)
                    .unwrap()
                    .encode_to_vec()
            },
        };
        let details = RpcStatus {
            code: 5,
            message: "gone".into(),
            details: vec![detail],
        }
        .encode_to_vec();
        let status = Status::with_details(Code::NotFound, "gone", details.into());
        let json = status_to_json(&status, &pool());
        assert_eq!(json["code"], "NotFound");
        assert_eq!(json["code_number"], 5);
        assert_eq!(json["details"][0]["value"]["key"], "x");
        let line = status_error("proto.KV/Get", &status, &pool()).message;
        assert!(
            line.starts_with("proto.KV/Get failed: NotFound (5): gone"),
            "{line}"
        );
    }
}
