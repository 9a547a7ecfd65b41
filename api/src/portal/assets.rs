//! The portal's one stylesheet: small, no framework, readable on a 360-px phone, high contrast,
//! visible keyboard focus. Served as a file so that the pages' Content-Security-Policy can
//! forbid inline styles and every script.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;

/// Where the stylesheet is served.
pub(crate) const CSS_PATH: &str = "/portal/assets/portal.css";

const CSS: &str = r#"*,*::before,*::after{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.5;color:#1a1a1a;background:#fff;-webkit-text-size-adjust:100%}
body{margin:0;min-height:100vh;display:flex;flex-direction:column}
a{color:#0b4f8a}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,main:focus-visible{outline:3px solid #f2a900;outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem 1rem;z-index:2}
.skip:focus{left:.5rem}
header.site{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between;padding:.75rem 1rem;background:#0b3a63;color:#fff}
header.site a.brand{color:#fff;font-weight:700;text-decoration:none;font-size:1.1rem}
header.site a.brand span{font-weight:400}
.who{display:flex;flex-wrap:wrap;gap:.25rem .75rem;align-items:center}
.role{border:1px solid #fff;border-radius:1rem;padding:0 .6rem;font-size:.85rem}
form.inline{display:inline;margin:0}
button.link{background:none;border:0;color:#fff;text-decoration:underline;font:inherit;cursor:pointer;padding:.25rem}
nav.site{background:#e8eef5;border-bottom:1px solid #c5d3e3}
nav.site ul{list-style:none;margin:0;padding:0 .5rem;display:flex;flex-wrap:wrap}
nav.site a{display:block;padding:.6rem .75rem;text-decoration:none;font-weight:600}
nav.site a[aria-current=page]{border-bottom:3px solid #0b3a63;color:#0b3a63}
main{flex:1;width:100%;max-width:70rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
footer.site{padding:1rem;font-size:.85rem;color:#444;border-top:1px solid #ddd}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(9.5rem,1fr));gap:.75rem;margin:0;padding:0}
.card{border:1px solid #c5d3e3;border-radius:.5rem;padding:.75rem;background:#f7f9fc}
.card dt{font-size:.85rem;color:#333}
.card dd{margin:0;font-size:1.5rem;font-weight:700}
.card dd small{display:block;font-size:.8rem;font-weight:400;color:#333}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{padding:.4rem .5rem;border-bottom:1px solid #ddd;text-align:left}
td.n,th.n{text-align:right}
tfoot th,tfoot td{border-top:2px solid #333;font-weight:700}
meter{width:100%;min-width:5rem;height:1rem}
.login{max-width:24rem}
.tabs{display:flex;gap:.5rem;margin-bottom:1rem}
.tabs a{padding:.4rem .8rem;border:1px solid #0b4f8a;border-radius:.3rem;text-decoration:none}
.tabs a[aria-current=page]{background:#0b4f8a;color:#fff}
.field{margin-bottom:1rem}
label{display:block;font-weight:600;margin-bottom:.25rem}
input[type=text],input[type=password],textarea,select{width:100%;font:inherit;padding:.55rem;border:1px solid #555;border-radius:.3rem}
input[aria-invalid=true]{border:2px solid #a00000}
button.primary{font:inherit;font-weight:600;padding:.6rem 1.2rem;background:#0b4f8a;color:#fff;border:0;border-radius:.3rem;cursor:pointer}
.error{color:#a00000;font-weight:600;margin:.25rem 0}
.alert{border-left:4px solid #a00000;background:#fdf0f0;padding:.5rem .75rem}
.muted{color:#444}
.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:.5rem 1rem;margin:0 0 1rem}
.facts dt{font-size:.85rem;color:#333}
.facts dd{margin:0;overflow-wrap:anywhere}
.activity{padding-left:1.25rem}
.activity li{margin-bottom:.5rem;overflow-wrap:anywhere}
.paging a{display:inline-block;padding:.4rem .8rem}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
"#;

pub(crate) async fn css() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}
