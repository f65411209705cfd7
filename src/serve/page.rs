//! The web page and its assets, built into the binary: nothing to install
//! or build beside it.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("page/index.html");

/// (name, content type, bytes)
const ASSETS: [(&str, &str, &[u8]); 7] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("page/app.js"),
    ),
    (
        "prices.js",
        "text/javascript; charset=utf-8",
        include_bytes!("page/prices.js"),
    ),
    (
        "energy.js",
        "text/javascript; charset=utf-8",
        include_bytes!("page/energy.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("page/app.css"),
    ),
    // The tab's icon, so no load asks for a /favicon.ico that is not there.
    ("icon.svg", "image/svg+xml", include_bytes!("page/icon.svg")),
    // uPlot (MIT licence, see page/uPlot.LICENSE), vendored from npm.
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("page/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("page/uPlot.min.css"),
    ),
];

pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, bytes)) => ([(header::CONTENT_TYPE, *kind)], *bytes).into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
