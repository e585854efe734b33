//! The proxy's own pages, for when a site has none of its own.

pub const NOT_FOUND: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>404: not found</title>\
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}\
@media (prefers-color-scheme:dark){body{background:#111;color:#ddd}}h1{font-size:1.4rem}</style></head>\
<body><h1>404: not found</h1><p>There is nothing at this address.</p></body></html>\n";

pub const NO_SITE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>404: no site here</title>\
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}\
@media (prefers-color-scheme:dark){body{background:#111;color:#ddd}}h1{font-size:1.4rem}</style></head>\
<body><h1>404: no site here</h1><p>No deployment is served at this host name.</p></body></html>\n";

pub const UNAVAILABLE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>502: storage unavailable</title></head><body><h1>502: storage unavailable</h1>\
<p>The site's files could not be read just now. Try again shortly.</p></body></html>\n";

pub const BUSY: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>503: busy</title></head><body><h1>503: busy</h1>\
<p>This server is looking up too many sites at once. Try again in a second.</p></body></html>\n";

pub const NOT_ALLOWED: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>405: method not allowed</title></head><body><h1>405: method not allowed</h1>\
<p>Sites answer GET and HEAD only.</p></body></html>\n";

pub const NO_RANGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>416: range not satisfiable</title></head><body><h1>416: range not satisfiable</h1>\
<p>The requested bytes are past the end of the file.</p></body></html>\n";
