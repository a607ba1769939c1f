//! Compiles the workspace's `proto/` with protox (pure Rust, no system
//! `protoc`) and hands the descriptor set to tonic-prost-build. The encoded
//! descriptor set, including the imported `google/protobuf/*` files, is kept in
//! `OUT_DIR` for the server's reflection.

use std::{env, path::PathBuf};

/// The contract, at the top of the workspace.
const PROTO_ROOT: &str = "../../proto";

const PROTOS: &[&str] = &[
    "proto/trove/v1/collection.proto",
    "proto/trove/v1/collection_service.proto",
    "proto/trove/v1/document.proto",
    "proto/trove/v1/document_service.proto",
    "proto/trove/v1/search.proto",
    "proto/trove/v1/search_service.proto",
    "proto/trove/v1/snapshot_service.proto",
    // Not used by the services' messages, but the type of the error details
    // (google.rpc.BadRequest, ErrorInfo): reflection clients need it to print them.
    "proto/google/rpc/error_details.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let files: Vec<String> = PROTOS
        .iter()
        .map(|p| format!("{PROTO_ROOT}/{}", p.trim_start_matches("proto/")))
        .collect();
    let file_descriptors = protox::compile(&files, [PROTO_ROOT])?;
    std::fs::write(
        out_dir.join("trove_descriptor.bin"),
        prost::Message::encode_to_vec(&file_descriptors),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(file_descriptors)?;
    Ok(())
}
