//! The OpenAPI document served at `/openapi.json`, kept by hand beside the routes (a test
//! checks that every documented path is routed and every route is documented).

/// The document.
pub const DOCUMENT: &str = include_str!("openapi.json");
