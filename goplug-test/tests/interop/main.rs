//! goplug against the real peers: go-plugin v1.8.0 hosts and plugins, Go's
//! `encoding/gob` and `net/rpc`, hashicorp/yamux, and grpcio (Python).
//! Needs Go (the peers are built once per run from `interop/go`) and the
//! Python interpreter in `GOPLUG_PYTHON` (see `scripts/test.sh`).
//!
//! One binary, so these tests link once; run one group with a filter
//! (`cargo test -p goplug-test --test interop gob::`).

mod gob;
mod kv;
mod tls;
mod trace;
mod version;
mod yamux;
