//! Differential test of `rangeget::urlparse` against CPython 3.11.7.
//!
//! `fixtures/urlparse/vectors.jsonl.gz` was written by
//! `fixtures/urlparse/generate.py` from CPython: every function, every field
//! of its result, every attribute (`username`, `password`, `hostname`, `port`,
//! `geturl`), and whether Python raised `ValueError`. This test needs no Python.

use std::io::{BufRead, BufReader};

use rangeget::urlparse::{self as up, ParseResult, QsOptions, SplitResult, UrlError};
use serde_json::{Value, json};

/// One check: a name and whether Rust agreed with Python.
struct Tally {
    checks: u64,
    mismatches: Vec<String>,
}

impl Tally {
    fn check(&mut self, what: &str, input: &Value, rust: Value, python: &Value) {
        self.checks += 1;
        if rust != *python && self.mismatches.len() < 10_000 {
            self.mismatches
                .push(format!("{what} {input}: rust {rust} python {python}"));
        }
    }
}

fn s(v: &Value) -> &str {
    v.as_str().expect("string argument")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| s(x).to_string())
        .collect()
}

/// A `Result` as the vector file writes it: `{"ok": …}` or `{"err": "message"}`,
/// so that error messages are compared too.
fn outcome<T>(r: Result<T, UrlError>, f: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(v) => json!({ "ok": f(v) }),
        Err(e) => json!({ "err": e.message() }),
    }
}

fn python_outcome(row: &Value) -> Value {
    match row.get("ok") {
        Some(v) => json!({ "ok": v }),
        None => json!({ "err": row["err"] }),
    }
}

fn attrs_split(r: &SplitResult) -> Value {
    json!({
        "username": r.username(), "password": r.password(), "hostname": r.hostname(),
        "port": outcome(r.port(), |p| json!(p)), "geturl": r.geturl(),
    })
}

fn attrs_parse(r: &ParseResult) -> Value {
    json!({
        "username": r.username(), "password": r.password(), "hostname": r.hostname(),
        "port": outcome(r.port(), |p| json!(p)), "geturl": r.geturl(),
    })
}

fn split_value(r: SplitResult) -> Value {
    json!([
        [r.scheme, r.netloc, r.path, r.query, r.fragment],
        attrs_split(&r)
    ])
}

fn parse_value(r: ParseResult) -> Value {
    json!([
        [r.scheme, r.netloc, r.path, r.params, r.query, r.fragment],
        attrs_parse(&r)
    ])
}

fn qs_opts(a: &[Value]) -> QsOptions {
    QsOptions {
        keep_blank_values: a[1].as_bool().unwrap(),
        strict_parsing: a[2].as_bool().unwrap(),
        max_num_fields: a[3].as_u64().map(|n| n as usize),
        separator: s(&a[4]).to_string(),
    }
}

fn pairs_value(p: Vec<(String, String)>) -> Value {
    p.into_iter().map(|(k, v)| json!([k, v])).collect()
}

fn grouped_value(p: Vec<(String, Vec<String>)>) -> Value {
    p.into_iter().map(|(k, v)| json!([k, v])).collect()
}

/// What Rust answers for one vector, in the vector's shape.
fn rust_answer(f: &str, a: &[Value]) -> Value {
    match f {
        "urlsplit" => outcome(up::urlsplit(s(&a[0])), split_value),
        "urlparse" => outcome(up::urlparse(s(&a[0])), parse_value),
        "urlsplit_with" => outcome(
            up::urlsplit_with(s(&a[0]), s(&a[1]), a[2].as_bool().unwrap()),
            split_value,
        ),
        "urlparse_with" => outcome(
            up::urlparse_with(s(&a[0]), s(&a[1]), a[2].as_bool().unwrap()),
            parse_value,
        ),
        "urldefrag" => outcome(up::try_urldefrag(s(&a[0])), |(u, f)| json!([u, f])),
        "urljoin" => outcome(up::try_urljoin(s(&a[0]), s(&a[1])), |u| json!(u)),
        "urlunsplit" => {
            let p = strings(&a[0]);
            let r = SplitResult {
                scheme: p[0].clone(),
                netloc: p[1].clone(),
                path: p[2].clone(),
                query: p[3].clone(),
                fragment: p[4].clone(),
            };
            json!({ "ok": up::urlunsplit(&r) })
        }
        "urlunparse" => {
            let p = strings(&a[0]);
            let r = ParseResult {
                scheme: p[0].clone(),
                netloc: p[1].clone(),
                path: p[2].clone(),
                params: p[3].clone(),
                query: p[4].clone(),
                fragment: p[5].clone(),
            };
            json!({ "ok": up::urlunparse(&r) })
        }
        "quote" => json!({ "ok": up::quote(s(&a[0])) }),
        "quote_plus" => json!({ "ok": up::quote_plus(s(&a[0])) }),
        "unquote" => json!({ "ok": up::unquote(s(&a[0])) }),
        "unquote_plus" => json!({ "ok": up::unquote_plus(s(&a[0])) }),
        "quote_with" => json!({ "ok": up::quote_with(s(&a[0]), s(&a[1])) }),
        "quote_plus_with" => json!({ "ok": up::quote_plus_with(s(&a[0]), s(&a[1])) }),
        "parse_qsl" => json!({ "ok": pairs_value(up::parse_qsl(s(&a[0]))) }),
        "parse_qs" => json!({ "ok": grouped_value(up::parse_qs(s(&a[0]))) }),
        "parse_qsl_with" => outcome(up::parse_qsl_with(s(&a[0]), &qs_opts(a)), pairs_value),
        "parse_qs_with" => outcome(up::parse_qs_with(s(&a[0]), &qs_opts(a)), grouped_value),
        "urlencode" => {
            let pairs: Vec<Vec<String>> = a[0].as_array().unwrap().iter().map(strings).collect();
            let refs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|p| (p[0].as_str(), p[1].as_str()))
                .collect();
            json!({ "ok": up::urlencode(&refs) })
        }
        "urlencode_doseq" => {
            let items: Vec<(String, Vec<String>)> = a[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (s(&p[0]).to_string(), strings(&p[1])))
                .collect();
            let values: Vec<Vec<&str>> = items
                .iter()
                .map(|(_, v)| v.iter().map(String::as_str).collect())
                .collect();
            let refs: Vec<(&str, &[&str])> = items
                .iter()
                .zip(&values)
                .map(|((k, _), v)| (k.as_str(), v.as_slice()))
                .collect();
            json!({ "ok": up::urlencode_doseq(&refs) })
        }
        other => panic!("unknown function {other} in the vectors"),
    }
}

#[test]
fn agrees_with_cpython_3_11_7() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/urlparse/vectors.jsonl.gz"
    );
    let file = std::fs::File::open(path).expect("open the vectors");
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut tally = Tally {
        checks: 0,
        mismatches: Vec::new(),
    };
    let mut rows = 0u64;
    let mut errors = 0u64;
    for line in reader.lines() {
        let row: Value = serde_json::from_str(&line.expect("read a line")).expect("valid JSON");
        rows += 1;
        let f = s(&row["f"]).to_string();
        let args = row["in"].as_array().expect("arguments").clone();
        let rust = rust_answer(&f, &args);
        let python = python_outcome(&row);
        // Count each field of a structured answer as its own check.
        match (&rust, &python) {
            (Value::Object(r), Value::Object(p))
                if r.contains_key("ok") && p.contains_key("ok") =>
            {
                match (&r["ok"], &p["ok"]) {
                    (Value::Array(ra), Value::Array(pa))
                        if ra.len() == 2 && ra[0].is_array() && ra[1].is_object() =>
                    {
                        let fields = ra[0].as_array().unwrap();
                        let pfields = pa[0].as_array().cloned().unwrap_or_default();
                        for (i, v) in fields.iter().enumerate() {
                            let pv = pfields.get(i).cloned().unwrap_or(Value::Null);
                            tally.check(&format!("{f}[{i}]"), &row["in"], v.clone(), &pv);
                        }
                        for (k, v) in ra[1].as_object().unwrap() {
                            let pv = pa[1].get(k).cloned().unwrap_or(Value::Null);
                            tally.check(&format!("{f}.{k}"), &row["in"], v.clone(), &pv);
                        }
                    }
                    _ => tally.check(&f, &row["in"], rust.clone(), &python),
                }
            }
            _ => tally.check(&f, &row["in"], rust.clone(), &python),
        }
        if row.get("err").is_some() {
            errors += 1;
        }
    }
    let agree = tally.checks - tally.mismatches.len() as u64;
    println!(
        "urlparse vs CPython 3.11.7: {agree}/{} checks agree ({:.2} %) over {rows} vectors ({errors} of them ValueError, messages compared)",
        tally.checks,
        100.0 * agree as f64 / tally.checks as f64
    );
    for m in tally.mismatches.iter().take(40) {
        println!("MISMATCH {m}");
    }
    assert!(rows > 100_000, "only {rows} vectors");
    assert!(
        tally.mismatches.is_empty(),
        "{} mismatches (first ones above)",
        tally.mismatches.len()
    );
}
