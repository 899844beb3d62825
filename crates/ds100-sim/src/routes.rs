//! Routing: which part of the simulator answers each request. Every endpoint it serves is
//! listed here, API endpoints (`Endpoint::ALL`) and admin ones (`/__sim/*`).

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::admin;
use crate::conn::ConnKill;
use crate::endpoint::Endpoint;
use crate::gate;
use crate::respond::{Body, JSON, error_json, plain_response};
use crate::state::State;

enum Route {
    Api(Endpoint),
    /// An API path asked with a method it does not take.
    WrongMethod(Endpoint),
    Store,
    Stats,
    Arrivals,
    /// `POST /oauth/token`, answered only when the token endpoint is configured.
    OAuthToken,
    Unknown,
}

fn route(method: &Method, path: &str) -> Route {
    if let Some(endpoint) = Endpoint::ALL.into_iter().find(|e| e.path() == path) {
        return if method.as_str() == endpoint.method() {
            Route::Api(endpoint)
        } else {
            Route::WrongMethod(endpoint)
        };
    }
    match (method, path) {
        (&Method::GET, "/__sim/store") => Route::Store,
        (&Method::GET, "/__sim/stats") => Route::Stats,
        (&Method::GET, "/__sim/arrivals") => Route::Arrivals,
        (&Method::POST, crate::oauth::TOKEN_PATH) => Route::OAuthToken,
        _ => Route::Unknown,
    }
}

/// The hyper service: one call per request. `kill` is the request's connection.
pub(crate) async fn handle(
    state: Arc<State>,
    kill: Arc<ConnKill>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let response = match route(req.method(), req.uri().path()) {
        Route::Api(endpoint) => gate::pass(&state, &kill, endpoint, req).await,
        Route::WrongMethod(endpoint) => {
            let mut resp = plain_response(
                StatusCode::METHOD_NOT_ALLOWED,
                JSON,
                error_json(405, "method not allowed"),
            );
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(endpoint.method()));
            resp
        }
        Route::Store => plain_response(StatusCode::OK, "text/csv", admin::store_csv(&state)),
        Route::Stats => plain_response(StatusCode::OK, JSON, admin::stats_json(&state)),
        Route::Arrivals => plain_response(StatusCode::OK, JSON, admin::arrivals_json(&state)),
        // Not behind the bearer gate: this is where tokens come from.
        Route::OAuthToken if let Some(oauth) = state.auth.oauth() => {
            crate::oauth::token::answer(oauth, &kill, req).await
        }
        Route::OAuthToken | Route::Unknown => plain_response(
            StatusCode::NOT_FOUND,
            JSON,
            error_json(404, "no such endpoint"),
        ),
    };
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{DELETE_PATH, DISABLE_PATH, ENABLE_PATH, LOOKUP_PATH, USERS_LOOKUP_PATH};

    #[test]
    fn every_path_goes_where_it_should() {
        let at = |method: Method, path: &str| match route(&method, path) {
            Route::Api(e) => format!("api {e}"),
            Route::WrongMethod(e) => format!("405 {e}"),
            Route::Store => "store".into(),
            Route::Stats => "stats".into(),
            Route::Arrivals => "arrivals".into(),
            Route::OAuthToken => "oauth token".into(),
            Route::Unknown => "404".into(),
        };
        assert_eq!(at(Method::DELETE, DELETE_PATH), "api delete");
        assert_eq!(at(Method::POST, LOOKUP_PATH), "api lookup");
        assert_eq!(at(Method::POST, USERS_LOOKUP_PATH), "api users");
        assert_eq!(at(Method::GET, USERS_LOOKUP_PATH), "405 users");
        assert_eq!(at(Method::POST, DELETE_PATH), "405 delete");
        assert_eq!(at(Method::GET, LOOKUP_PATH), "405 lookup");
        assert_eq!(at(Method::PATCH, DISABLE_PATH), "api disable");
        assert_eq!(at(Method::PATCH, ENABLE_PATH), "api enable");
        assert_eq!(at(Method::POST, DISABLE_PATH), "405 disable");
        assert_eq!(at(Method::DELETE, ENABLE_PATH), "405 enable");
        assert_eq!(at(Method::GET, "/__sim/store"), "store");
        assert_eq!(at(Method::GET, "/__sim/stats"), "stats");
        assert_eq!(at(Method::GET, "/__sim/arrivals"), "arrivals");
        assert_eq!(at(Method::POST, "/__sim/store"), "404");
        assert_eq!(at(Method::POST, "/oauth/token"), "oauth token");
        assert_eq!(at(Method::GET, "/oauth/token"), "404");
        assert_eq!(
            at(Method::DELETE, "/AdminInterface/restapi/v1/ds100/delete"),
            "404"
        );
    }
}
