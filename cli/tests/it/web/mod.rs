//! The web page at `/`, driven in headless Chromium through chromedriver (both from Debian's
//! `chromium` and `chromium-driver`, installed by `.ci/run`): sign in, create a project from a
//! git repository served on loopback, watch its build, follow the production link; a failing
//! build; hostile log text shown as text; cancel a running build; a dropped log connection
//! resumed; addresses that try to climb out of an API path; the keyboard; the layout at 360 and
//! 1280 px, light and dark (screenshots in `target/test-artifacts`); who is signed in, a
//! project's variables and members, tokens made, shown once and revoked. The log stream's own
//! checks (token in a subprotocol, `Origin`) are tested without a browser.

mod browser;
mod deployments;
mod first_hour;
mod layout;
mod security;
mod team;

const FAIL_SH: &str = "printf 'about to fail\\n'\nexit 3\n";

/// A build that says it started, then takes a minute: there is time to cancel it.
const SLOW_SH: &str = "printf 'started\\n'\nsleep 60\n";

/// A width the page reported, in CSS pixels; a missing one fails the test (rather than
/// comparing as equal to another missing one).
fn width(value: &serde_json::Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a width: {value}"))
}
