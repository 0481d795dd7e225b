//! A proxy that breaks server-sent events, as some do.

/// A proxy in front of the server on 127.0.0.1 that passes every request
/// but the live event stream (`GET /api/live/`), whose connection it drops,
/// as some proxies break server-sent events. Returns its port.
pub async fn proxy_refusing_event_streams(upstream: u16) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let answers = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                });
                // Requests are read one head at a time (the page sends no
                // request bodies but the sign-in's, which has a length).
                let mut pending = Vec::new();
                let mut buffer = [0u8; 16 * 1024];
                loop {
                    let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match from_client.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => pending.extend_from_slice(&buffer[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&pending[..end + 4]).to_string();
                    let path = head.split(' ').nth(1).unwrap_or("");
                    if path == "/api/live/" || path.starts_with("/api/live/?") {
                        break;
                    }
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while pending.len() < end + 4 + length {
                        match from_client.read(&mut buffer).await {
                            Ok(0) | Err(_) => return answers.abort(),
                            Ok(n) => pending.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let request: Vec<u8> = pending.drain(..end + 4 + length).collect();
                    if to_server.write_all(&request).await.is_err() {
                        break;
                    }
                }
                answers.abort();
            });
        }
    });
    port
}
