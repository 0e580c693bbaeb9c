//! The client side of the binary: `--probe` for container health checks and `--promote` /
//! `--rollback` against a running server's admin API. Plain HTTP/1.1 over a socket (`http://`
//! addresses only; put a TLS terminator in front of the server for anything else).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Splits `http://host:port/path` into (`host:port`, `/path`).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest =
        url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
    Ok((authority, path.to_owned()))
}

/// Sends one request and returns (status, body).
fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Result<(u16, String), String> {
    let (authority, path) = split_url(url)?;
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("{authority}: {e}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{url}: not an HTTP answer"))?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Exit 0 when `url` answers 200.
pub fn probe(url: &str) -> ExitCode {
    match request("GET", url, &[], "") {
        Ok((200, _)) => ExitCode::SUCCESS,
        Ok((status, _)) => {
            eprintln!("{url}: HTTP {status}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// `POST /admin/models/{model}/{action}` with the key in `INGOT_ADMIN_KEY`.
pub fn release(server: &str, action: &str, model: &str, version: Option<&str>) -> ExitCode {
    let key = std::env::var("INGOT_ADMIN_KEY").unwrap_or_default();
    let auth = format!("Bearer {key}");
    let mut headers = vec![("Content-Type", "application/json")];
    if !key.is_empty() {
        headers.push(("Authorization", auth.as_str()));
    }
    let body = match version {
        Some(v) => serde_json::json!({ "version": v }).to_string(),
        None => String::new(),
    };
    let url = format!("{}/admin/models/{model}/{action}", server.trim_end_matches('/'));
    match request("POST", &url, &headers, &body) {
        Ok((200, body)) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("{action} {model}: HTTP {status}: {body}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/v2/health/ready").unwrap(),
            ("127.0.0.1:8080".into(), "/v2/health/ready".into())
        );
        assert_eq!(split_url("http://localhost").unwrap(), ("localhost:80".into(), "/".into()));
        assert!(split_url("https://x").is_err());
    }
}
