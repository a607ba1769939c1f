//! The server's own generated code of `proto/`: the service stubs and message
//! types the services implement, in which `google.protobuf.Struct` (a
//! document's fields) is `api::wire::WireStruct`, so that a response can carry
//! fields encoded once and kept (see `src/api/wire.rs`), and whose codec sizes
//! a response's buffer once (`src/api/codec.rs`). Calling services use
//! `trove-client`'s types, where it is prost's own `Struct`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const ROOT: &str = "proto";
    println!("cargo:rerun-if-changed={ROOT}");
    let files: Vec<String> = [
        "trove/v1/collection.proto",
        "trove/v1/collection_service.proto",
        "trove/v1/document.proto",
        "trove/v1/document_service.proto",
        "trove/v1/search.proto",
        "trove/v1/search_service.proto",
        "trove/v1/snapshot_service.proto",
    ]
    .iter()
    .map(|p| format!("{ROOT}/{p}"))
    .collect();
    let file_descriptors = protox::compile(&files, [ROOT])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .extern_path(".google.protobuf.Struct", "crate::api::wire::WireStruct")
        .codec_path("crate::api::codec::SizedCodec")
        .compile_fds(file_descriptors)?;
    Ok(())
}
