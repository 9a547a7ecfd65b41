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
.table-wrap{overflow-x:auto;position:relative}
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
header.site a.name{color:#fff}
input[type=email],input[type=search]{width:100%;font:inherit;padding:.55rem;border:1px solid #555;border-radius:.3rem}
select[aria-invalid=true]{border:2px solid #a00000}
.notice{border-left:4px solid #1d6b2f;background:#eef8f0;padding:.5rem .75rem}
button.secondary{font:inherit;padding:.35rem .8rem;background:#fff;color:#0b4f8a;border:1px solid #0b4f8a;border-radius:.3rem;cursor:pointer}
.stack{max-width:32rem}
.badge{display:inline-block;border:1px solid #0b3a63;border-radius:.3rem;padding:0 .4rem;font-size:.85rem}
tr.changed th,tr.changed td{background:#fff4d6;font-weight:600}
tr.changed th{border-left:4px solid #b36b00}
details>summary{cursor:pointer;padding:.4rem 0;font-weight:600}
summary:focus-visible{outline:3px solid #f2a900;outline-offset:2px}
.field.check{display:flex;gap:.5rem;align-items:flex-start}
.field.check input{width:1.25rem;height:1.25rem;margin-top:.2rem;flex:none}
.field.check label{font-weight:400}
input[type=date],input[type=datetime-local]{width:100%;max-width:20rem;font:inherit;padding:.55rem;border:1px solid #555;border-radius:.3rem}
.rate-form{max-width:32rem}
.actions{display:flex;flex-wrap:wrap;gap:.25rem .75rem;margin:0 0 1rem}
input[type=tel],input[type=number]{width:100%;font:inherit;padding:.55rem;border:1px solid #555;border-radius:.3rem}
fieldset{border:1px solid #c5d3e3;border-radius:.3rem;margin:0 0 1rem;padding:.75rem}
legend{font-weight:700;padding:0 .25rem}
ol.steps{display:flex;flex-wrap:wrap;gap:.25rem 1.5rem;padding-left:1.25rem}
ol.steps li[aria-current=step]{font-weight:700;text-decoration:underline}
th[aria-sort] a{font-weight:700}
.chart-wrap{overflow-x:auto}
svg.chart{display:block;width:100%;min-width:30rem;height:auto;max-width:48rem;margin:.5rem 0}
section.figure{margin:0 0 2rem;border-top:1px solid #ddd}
.downloads a{display:inline-block;padding:.3rem 0}
@media print{
@page{size:A4;margin:15mm}
header.site,nav.site,footer.site,form,.skip,.downloads{display:none}
main{max-width:none;padding:0}
section.figure{break-inside:avoid;page-break-inside:avoid;break-before:page;border:0}
details.numbers::details-content{content-visibility:visible;display:block}
svg.chart{max-width:100%;min-width:0}
.chart-wrap{overflow:visible}
a{color:inherit;text-decoration:none}
}
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

/// Where the icon is served (browsers ask for one on every page; without it each page logs a
/// failed load).
pub(crate) const ICON_PATH: &str = "/portal/assets/icon.svg";

/// A lightning bolt on the header's blue.
const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#0b3a63"/><path d="M18 3 7 18h7l-2 11 11-15h-7z" fill="#f2a900"/></svg>"##;

pub(crate) async fn icon() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "image/svg+xml"),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        ICON,
    )
}
