//! The OpenAPI 3.1 descriptions of both listeners, served at `/openapi.json`; a test keeps them
//! true to the routes the app registers.

pub const AUTHORITY: &str = include_str!("../openapi/authority.json");
pub const ADMIN: &str = include_str!("../openapi/admin.json");
