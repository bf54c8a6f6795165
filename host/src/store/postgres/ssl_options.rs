//! The TLS options of a connection string that tokio-postgres does not
//! take: `sslmode=verify-ca|verify-full` (it knows `disable`, `prefer`,
//! `require`) and `sslrootcert`. [`split`] takes them out of either form
//! (URL query or `key=value` words) and leaves the rest as it was, with
//! `sslmode=require` in place of a `verify-*` mode.

/// The options taken out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SslOptions {
    /// `verify-ca` or `verify-full`, when the string said so.
    pub verify: Option<String>,
    /// `sslrootcert`'s value (a path, or `system`).
    pub rootcert: Option<String>,
}

/// The string without the options tokio-postgres refuses, and those.
pub fn split(url: &str) -> (String, SslOptions) {
    let mut options = SslOptions::default();
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url, &mut options)
    } else {
        split_words(url, &mut options)
    };
    (rest, options)
}

/// Whether `key=value` is one of ours: kept in `options` (then the pair
/// is dropped, or, for a `verify-*` mode, replaced by `require`).
fn take(key: &str, value: &str, options: &mut SslOptions) -> Option<&'static str> {
    match (key, value) {
        ("sslmode", "verify-ca" | "verify-full") => {
            options.verify = Some(value.to_string());
            Some("require")
        }
        ("sslrootcert", _) => {
            options.rootcert = Some(value.to_string());
            Some("")
        }
        _ => None,
    }
}

fn split_url(url: &str, options: &mut SslOptions) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match take(&decode(key), &decode(value), options) {
            None => kept.push(pair.to_string()),
            Some("") => {}
            Some(mode) => kept.push(format!("sslmode={mode}")),
        }
    }
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// A URL part with its `%XX` escapes decoded (left as it is when they
/// do not make UTF-8).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// `key = value` words, values bare or in single quotes with `\`
/// escapes, as libpq writes them.
fn split_words(s: &str, options: &mut SslOptions) -> String {
    let mut kept = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        chars.next_if_eq(&'=');
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let (mut value, mut raw) = (String::new(), String::new());
        if chars.next_if_eq(&'\'').is_some() {
            raw.push('\'');
            while let Some(c) = chars.next() {
                raw.push(c);
                match c {
                    '\\' => {
                        if let Some(e) = chars.next() {
                            raw.push(e);
                            value.push(e);
                        }
                    }
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                raw.push(c);
                value.push(c);
            }
        }
        match take(&key, &value, options) {
            None => kept.push(format!("{key}={raw}")),
            Some("") => {}
            Some(mode) => kept.push(format!("sslmode={mode}")),
        }
    }
    kept.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_lose_only_the_options_tokio_postgres_refuses() {
        let (rest, o) = split(
            "postgresql://u:p%40ss@127.0.0.1:5/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=3",
        );
        assert_eq!(
            rest,
            "postgresql://u:p%40ss@127.0.0.1:5/db?sslmode=require&connect_timeout=3"
        );
        assert_eq!(o.verify.as_deref(), Some("verify-full"));
        assert_eq!(o.rootcert.as_deref(), Some("/tmp/ca.pem"));

        let (rest, o) = split(
            "host=127.0.0.1 password='a b\\'c' sslmode = verify-ca sslrootcert='/x y/ca.pem' dbname=d",
        );
        assert_eq!(
            rest,
            "host=127.0.0.1 password='a b\\'c' sslmode=require dbname=d"
        );
        assert_eq!(o.verify.as_deref(), Some("verify-ca"));
        assert_eq!(o.rootcert.as_deref(), Some("/x y/ca.pem"));

        let (rest, o) = split("postgresql:///db?host=/run/pg&sslmode=require");
        assert_eq!(rest, "postgresql:///db?host=/run/pg&sslmode=require");
        assert_eq!(o, SslOptions::default());
        let (rest, _) = split("postgresql://h/db?sslrootcert=system");
        assert_eq!(rest, "postgresql://h/db");
    }
}
