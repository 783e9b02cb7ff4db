//! A minimal CMX v2 stand-in on loopback that serves one person on a 4000 × 3000 floor plan, for timing
//! a whole `whereis-bot find --map-dir` process (see BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p whereis-floormap --example plan_stand -- [PORT]
//! ```
//!
//! It answers `GET /api/location/v2/clients?username=bench` with one device on a 300 × 225 ft floor
//! whose image is `plan-4000x3000.png`, serves that image, and answers 204 for anyone else. Credentials
//! are not checked. One thread per connection, `Connection: close`: enough for a benchmark, nothing more.

#[path = "../benches/support/plan.rs"]
mod plan;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

const IMAGE_NAME: &str = "plan-4000x3000.png";
const CLIENTS_PATH: &str = "/api/location/v2/clients";
const IMAGE_PATH: &str = "/api/config/v1/maps/imagesource/";

fn client_json() -> String {
    format!(
        r#"[{{"macAddress":"00:aa:bb:cc:dd:ee","userName":"bench","ssId":"CORP","dot11Status":"ASSOCIATED",
"mapInfo":{{"mapHierarchyString":"HQ>Building 1>Floor 1","floorRefId":"42",
"floorDimension":{{"width":300,"length":225,"offsetX":0,"offsetY":0,"unit":"FEET"}},
"image":{{"imageName":"{IMAGE_NAME}"}}}},
"mapCoordinate":{{"x":181.3,"y":97.6,"unit":"FEET"}},
"statistics":{{"maxDetectedRssi":{{"lastHeardInSeconds":4}}}}}}]"#
    )
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &[u8]) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

fn serve(mut stream: TcpStream, png: &[u8], clients: &[u8]) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers; requests here have no body.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path == CLIENTS_PATH {
        if query.split('&').any(|pair| pair == "username=bench") {
            respond(&mut stream, "200 OK", "application/json", clients)
        } else {
            respond(&mut stream, "204 No Content", "application/json", b"")
        }
    } else if path.strip_prefix(IMAGE_PATH) == Some(IMAGE_NAME) {
        respond(&mut stream, "200 OK", "image/png", png)
    } else {
        respond(&mut stream, "404 Not Found", "text/plain", b"not found")
    }
}

fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(port) => port.parse().map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "PORT must be a number")
        })?,
        None => 0,
    };
    let png: Arc<[u8]> = plan::png_bytes(&plan::floor_plan()).into();
    let clients: Arc<[u8]> = client_json().into_bytes().into();
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!(
        "CMX v2 stand-in at http://{} ({}×{} PNG, {} KiB); user: bench",
        listener.local_addr()?,
        plan::WIDTH,
        plan::HEIGHT,
        png.len() / 1024
    );
    for stream in listener.incoming() {
        let stream = stream?;
        let (png, clients) = (Arc::clone(&png), Arc::clone(&clients));
        std::thread::spawn(move || {
            if let Err(err) = serve(stream, &png, &clients) {
                eprintln!("plan_stand: {err}");
            }
        });
    }
    Ok(())
}
