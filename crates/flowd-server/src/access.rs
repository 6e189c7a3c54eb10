//! Which role each API route needs: one table, by method and route, applied to every `/api/`
//! route by [`require_role`] once the key is known. A route not named here needs `viewer` to read
//! (`GET`) and `developer` for anything else, so a route added later is covered as it is added.
//! Another team's ids are not this module's concern: the engine answers them `404`.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use flowd_core::access::Role;

use crate::auth::Caller;
use crate::error::ApiError;

/// The least role `method` on `route` (a route template as openapi.json writes it,
/// `/api/v1/workflows/{id}`) needs.
pub fn required_role(method: &Method, route: &str) -> Role {
    let route = route.strip_prefix("/api/v1").unwrap_or(route);
    let under = |prefix: &str| route == prefix || route.starts_with(&format!("{prefix}/"));
    if under("/teams") || under("/api-keys") {
        return Role::Admin;
    }
    // A stored request is the personal data a workflow received.
    if route == "/audit" || route == "/executions/{id}/request" {
        return Role::Developer;
    }
    // A preview computes fire times and changes nothing.
    if route == "/schedules/preview" {
        return Role::Viewer;
    }
    if matches!(*method, Method::GET | Method::HEAD) {
        Role::Viewer
    } else {
        Role::Developer
    }
}

/// Middleware, after [`crate::auth::require_api_key`]: refuses with `403 forbidden` a call its
/// key's role does not allow.
pub async fn require_role(request: Request, next: Next) -> Response {
    let Some(Caller(principal)) = request.extensions().get::<Caller>().cloned() else {
        return ApiError::unauthorized().into_response();
    };
    // Unrouted paths have no template: the fallback answers them (404).
    let Some(route) = request.extensions().get::<MatchedPath>() else {
        return next.run(request).await;
    };
    let required = required_role(request.method(), route.as_str());
    match principal.require(required) {
        Ok(()) => next.run(request).await,
        Err(error) => ApiError::from(error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teams_and_keys_are_for_admins() {
        for route in [
            "/api/v1/teams",
            "/api/v1/teams/{name}",
            "/api/v1/api-keys/{id}",
        ] {
            assert_eq!(required_role(&Method::GET, route), Role::Admin, "{route}");
            assert_eq!(
                required_role(&Method::DELETE, route),
                Role::Admin,
                "{route}"
            );
        }
    }

    #[test]
    fn reads_are_for_viewers_and_changes_for_developers() {
        assert_eq!(
            required_role(&Method::GET, "/api/v1/workflows/{id}"),
            Role::Viewer
        );
        assert_eq!(
            required_role(&Method::PATCH, "/api/v1/workflows/{id}"),
            Role::Developer
        );
        assert_eq!(
            required_role(&Method::POST, "/api/v1/workflows/{id}/runs"),
            Role::Developer
        );
    }

    #[test]
    fn the_audit_log_is_read_by_developers() {
        assert_eq!(
            required_role(&Method::GET, "/api/v1/audit"),
            Role::Developer
        );
    }
}
