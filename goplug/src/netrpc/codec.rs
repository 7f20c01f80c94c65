//! net/rpc's gob codec (`gobClientCodec`/`gobServerCodec`), without I/O.
//!
//! Each direction of a net/rpc connection is one gob stream. A call is a
//! [`RequestHeader`] (Go's `rpc.Request`) followed by the arguments; a reply
//! is a [`ResponseHeader`] (`rpc.Response`) followed by the result, or, when
//! the call failed, by an empty struct (Go's `invalidRequest`, `struct{}`).
//! Headers and bodies always come in pairs, and the decoders here take
//! them in pairs: all or nothing.

use super::gob::{Decoder, Encoder, Gob, GobError, Limits, Type, Value, validate};

crate::gob_struct! {
    /// Go's `rpc.Request`: the header of a call.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    #[gob(name = "rpc.Request")]
    pub struct RequestHeader {
        /// `Service.Method`.
        "ServiceMethod" => pub service_method: String,
        /// The sequence number the caller chose.
        "Seq" => pub seq: u64,
    }
}

crate::gob_struct! {
    /// Go's `rpc.Response`: the header of a reply.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    #[gob(name = "rpc.Response")]
    pub struct ResponseHeader {
        /// The call's `Service.Method`.
        "ServiceMethod" => pub service_method: String,
        /// The call's sequence number.
        "Seq" => pub seq: u64,
        /// The error text; empty on success.
        "Error" => pub error: String,
    }
}

/// A decoded request: its header, the arguments' type and value, and the
/// bytes consumed.
pub type DecodedRequest = (RequestHeader, Type, Value, usize);

/// A decoded response: its header, the result's type and value, and the
/// bytes consumed.
pub type DecodedResponse = (ResponseHeader, Type, Value, usize);

/// The caller's side of a net/rpc connection: encodes requests, decodes
/// responses.
#[derive(Debug)]
pub struct ClientCodec {
    enc: Encoder,
    dec: Decoder,
}

impl ClientCodec {
    /// A codec for a new connection, decoding within `limits`.
    pub fn new(limits: Limits) -> Self {
        Self::from_parts(Encoder::new(), Decoder::new(limits))
    }

    /// A codec with this encoder (say, one with other type ids, see
    /// [`Encoder::with_first_id`]) and decoder.
    pub fn from_parts(enc: Encoder, dec: Decoder) -> Self {
        ClientCodec { enc, dec }
    }

    /// Appends a call to `out`: the header, then the arguments. On error
    /// (the arguments are not a value of `body_ty`) nothing is appended.
    pub fn encode_request(
        &mut self,
        header: &RequestHeader,
        body_ty: &Type,
        body: &Value,
        out: &mut Vec<u8>,
    ) -> Result<(), GobError> {
        validate(body_ty, body)?;
        self.enc.encode_gob(header, out)?;
        self.enc.encode(body_ty, body, out)
    }

    /// Decodes a response header and its body from the front of `buf`.
    /// `Ok(None)` until both are complete (nothing is consumed).
    pub fn decode_response(&mut self, buf: &[u8]) -> Result<Option<DecodedResponse>, GobError> {
        decode_pair::<ResponseHeader>(&mut self.dec, buf)
    }
}

/// The callee's side of a net/rpc connection: decodes requests, encodes
/// responses.
#[derive(Debug)]
pub struct ServerCodec {
    enc: Encoder,
    dec: Decoder,
}

impl ServerCodec {
    /// A codec for a new connection, decoding within `limits`.
    pub fn new(limits: Limits) -> Self {
        Self::from_parts(Encoder::new(), Decoder::new(limits))
    }

    /// A codec with this encoder and decoder.
    pub fn from_parts(enc: Encoder, dec: Decoder) -> Self {
        ServerCodec { enc, dec }
    }

    /// Decodes a request header and its arguments from the front of `buf`.
    /// `Ok(None)` until both are complete (nothing is consumed).
    pub fn decode_request(&mut self, buf: &[u8]) -> Result<Option<DecodedRequest>, GobError> {
        decode_pair::<RequestHeader>(&mut self.dec, buf)
    }

    /// Appends a reply to `out`: the header, then the result. On error (the
    /// result is not a value of `body_ty`) nothing is appended.
    pub fn encode_response(
        &mut self,
        header: &ResponseHeader,
        body_ty: &Type,
        body: &Value,
        out: &mut Vec<u8>,
    ) -> Result<(), GobError> {
        validate(body_ty, body)?;
        self.enc.encode_gob(header, out)?;
        self.enc.encode(body_ty, body, out)
    }

    /// Appends a failed call's reply to `out`, as net/rpc sends it: the
    /// header (with [`ResponseHeader::error`] set) and an empty struct.
    pub fn encode_error(
        &mut self,
        header: &ResponseHeader,
        out: &mut Vec<u8>,
    ) -> Result<(), GobError> {
        self.encode_response(header, &<()>::gob_type(), &().to_gob(), out)
    }
}

fn decode_pair<H: Gob>(
    dec: &mut Decoder,
    buf: &[u8],
) -> Result<Option<(H, Type, Value, usize)>, GobError> {
    let Some((values, consumed)) = dec.decode_many(buf, 2)? else {
        return Ok(None);
    };
    let mut values = values.into_iter();
    let (Some((_, header)), Some((body_ty, body))) = (values.next(), values.next()) else {
        return Ok(None);
    };
    Ok(Some((H::from_gob(header)?, body_ty, body, consumed)))
}
