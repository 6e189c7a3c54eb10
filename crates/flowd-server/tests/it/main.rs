//! Integration tests of flowd over real HTTP, with real Python: the server is started in-process
//! on port 0 with a fresh data dir for each test.

mod support;

mod api_support;
mod hook_request;
mod hook_response;
mod smoke;

mod alerts;
mod api_access;
mod api_audit;
mod api_auth;
mod api_egress_allow;
mod api_workflows;
mod async_calls;
mod attacks;
mod backpressure;
mod connections;
mod console;
mod deploys;
mod disconnects;
mod e2e;
mod e2e_console;
mod env;
mod executions;
mod isolation;
mod metrics;
mod openapi;
mod postgres;
mod process_faults;
mod replay;
mod retention;
mod retries;
mod runtimes;
mod schemathesis;
mod settings;
mod store_faults;
mod webhook_context;
mod webhook_idempotency;
mod webhook_signatures;
