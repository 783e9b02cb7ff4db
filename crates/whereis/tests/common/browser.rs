//! A real browser for the page tests: headless Chromium driven through chromedriver (WebDriver) with
//! `fantoccini`, a screenshot of every step a person would look at, and nothing left running after.
//!
//! Without chromedriver or Chromium the tests are skipped with a loud message, so a developer without
//! a browser can still run `cargo test --workspace`; with `CI` set they fail instead.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the browser gets for anything a person would wait for (a page, a lookup, suggestions).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Headless Chromium makes no window narrower than this; narrower screens are emulated.
const SMALLEST_WINDOW: u32 = 500;

/// chromedriver and a headless Chromium session; both end when this is dropped.
pub struct Browser {
    client: Client,
    driver: Child,
    port: u16,
    session: Option<String>,
    chrome_pid: Option<i32>,
    shots: PathBuf,
    step: u32,
    _scratch: TempDir,
}

/// What to run, from `CHROME_BIN` / `CHROMEDRIVER` or the usual places; the missing one's name.
fn programs() -> Result<(PathBuf, PathBuf), String> {
    let chromium = find_program(
        "CHROME_BIN",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        &["chromium", "chromium-browser", "google-chrome"],
    )
    .ok_or("Chromium (set CHROME_BIN, or install Debian's `chromium`)")?;
    let driver = find_program(
        "CHROMEDRIVER",
        &["/usr/bin/chromedriver"],
        &["chromedriver"],
    )
    .ok_or("chromedriver (set CHROMEDRIVER, or install Debian's `chromium-driver`)")?;
    Ok((chromium, driver))
}

fn find_program(env: &str, paths: &[&str], names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    paths
        .iter()
        .map(PathBuf::from)
        .chain(
            names
                .iter()
                .flat_map(|name| on_path.iter().map(move |dir| dir.join(name))),
        )
        .find(|path| path.is_file())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Where screenshots go: `target/browser-screenshots/` of the workspace.
pub fn screenshot_root() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("browser-screenshots")
}

impl Browser {
    /// A fresh headless Chromium with a `width`×`height` window, its screenshots under
    /// `target/browser-screenshots/{test}/`. `None` (said loudly) when there is no browser here and
    /// `CI` is not set.
    pub async fn start(test: &str, width: u32, height: u32) -> Option<Browser> {
        let (chromium, driver_program) = match programs() {
            Ok(found) => found,
            Err(missing) if in_ci() => panic!("browser tests need {missing}; CI is set"),
            Err(missing) => {
                eprintln!(
                    "\n!!! SKIPPED {test}: no {missing}. The browser tests did NOT run. !!!\n"
                );
                return None;
            }
        };
        let scratch = tempfile::tempdir().expect("scratch directory");
        let (driver, port) = start_driver(&driver_program, scratch.path()).await;
        wait_until_ready(port).await;

        let profile = scratch.path().join("profile");
        let mut capabilities = fantoccini::wd::Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--window-size={},{height}", width.max(SMALLEST_WINDOW)),
                    format!("--user-data-dir={}", profile.display()),
                    // Overlay scrollbars, as on a phone: the viewport is the whole window width.
                    "--hide-scrollbars",
                    "--lang=en-US",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--disable-component-update",
                    "--disable-domain-reliability",
                    "--no-pings",
                    // Only loopback is ever reached: everything else goes to a proxy that is not
                    // there (Chromium never proxies loopback addresses).
                    "--proxy-server=http://127.0.0.1:9",
                ],
            }),
        );
        if width < SMALLEST_WINDOW {
            // A phone: its screen size emulated, its `<meta name=viewport>` honoured.
            capabilities["goog:chromeOptions"]["mobileEmulation"] = json!({
                "deviceMetrics": {
                    "width": width, "height": height, "pixelRatio": 1.0,
                    "mobile": true, "touch": false,
                },
            });
        }
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|err| panic!("chromedriver started no Chromium session: {err}"));
        let session = client.session_id().await.ok().flatten();
        let chrome_pid = client
            .capabilities()
            .and_then(|c| c.get("goog:processID"))
            .and_then(Value::as_i64)
            .and_then(|pid| i32::try_from(pid).ok());
        let shots = screenshot_root().join(test);
        // Old pictures of this test would mislead whoever looks.
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshot directory");
        Some(Browser {
            client,
            driver,
            port,
            session,
            chrome_pid,
            shots,
            step: 0,
            _scratch: scratch,
        })
    }

    /// The WebDriver client, for what the helpers below do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|err| panic!("open {url}: {err}"));
    }

    /// The address the browser shows.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Saves what the window shows as `{NN}-{what}.png` and returns its path.
    pub async fn screenshot(&mut self, what: &str) -> PathBuf {
        self.step += 1;
        let path = self.shots.join(format!("{:02}-{what}.png", self.step));
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|err| panic!("screenshot {what}: {err}"));
        std::fs::write(&path, png).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        path
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

    /// Waits until the JavaScript expression `condition` is truthy and returns its value; after
    /// [`PATIENCE`] the test fails, with a screenshot of how far the page got.
    pub async fn wait_for(&mut self, what: &str, condition: &str) -> Value {
        let script = format!("return ({condition});");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut every = tokio::time::interval(Duration::from_millis(50));
        loop {
            every.tick().await;
            let value = self.client.execute(&script, vec![]).await;
            match value {
                Ok(value) if truthy(&value) => return value,
                // A navigation in progress replaces the document under the script: ask again.
                Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => continue,
                last => {
                    let shot = self.screenshot(&format!("timed-out-{}", slug(what))).await;
                    panic!(
                        "waited {PATIENCE:?} for {what} ({condition}); last answer {last:?}; \
                         at {}; screenshot {}",
                        self.url().await,
                        shot.display()
                    );
                }
            }
        }
    }

    /// The one element `css` matches.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no {css}: {err}"))
    }

    /// Every element `css` matches.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("{css}: {err}"))
    }

    /// The text `css` shows, whitespace collapsed (empty when nothing matches).
    pub async fn text(&self, css: &str) -> String {
        let value = self
            .js(
                "const e = document.querySelector(arguments[0]);\
                 return e ? e.innerText.replace(/\\s+/g, ' ').trim() : '';",
                vec![json!(css)],
            )
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Clicks the one element `css` matches, as a mouse would.
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|err| panic!("click {css}: {err}"));
    }

    /// Presses `keys` one after another on the keyboard, into whatever has the focus (unlike an
    /// element's `send_keys`, which moves the focus there first). Special keys: `fantoccini::key::Key`.
    pub async fn press(&self, keys: &str) {
        let mut actions = KeyActions::new("keyboard".to_owned());
        for key in keys.chars() {
            actions = actions
                .then(KeyAction::Down { value: key })
                .then(KeyAction::Up { value: key });
        }
        self.client
            .perform_actions(actions)
            .await
            .unwrap_or_else(|err| panic!("press {keys:?}: {err}"));
    }

    /// The value of the session cookie `name` (HttpOnly ones too).
    pub async fn cookie(&self, name: &str) -> String {
        let cookie = self
            .client
            .get_named_cookie(name)
            .await
            .unwrap_or_else(|err| panic!("no cookie {name}: {err}"));
        format!("{name}={}", cookie.value())
    }

    /// Ends the session the way chromedriver cleans up after itself: a `DELETE /session/{id}`,
    /// synchronous because it runs in `drop`.
    fn end_session(&self) -> bool {
        let Some(session) = &self.session else {
            return false;
        };
        let Ok(mut stream) = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(2),
        ) else {
            return false;
        };
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
        let request = format!(
            "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        // chromedriver answers once Chromium has quit, and may keep the connection open after:
        // the head of the answer is all that is needed.
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
        answer.starts_with(b"HTTP/1.1 200")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.end_session() {
            if let Some(pid) = self.chrome_pid {
                // SAFETY: kill(2) on the browser process this session started; no memory involved.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        let _ = self.driver.start_kill();
    }
}

/// How often chromedriver is started again after losing its port to another process.
const DRIVER_ATTEMPTS: usize = 5;

/// Starts chromedriver on a port of its own choosing (`--port=0`) and reads which one it took.
/// chromedriver takes the port on IPv6 first and then binds the same number on IPv4, which another
/// process (a test running alongside) may hold by then: it then exits, and is started again.
async fn start_driver(program: &Path, scratch: &Path) -> (Child, u16) {
    let log = scratch.join("chromedriver.log");
    for _ in 1..DRIVER_ATTEMPTS {
        match try_start_driver(program, scratch).await {
            Some(started) => return started,
            None if std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("Address already in use") =>
            {
                let _ = std::fs::remove_file(&log);
            }
            None => break,
        }
    }
    try_start_driver(program, scratch).await.unwrap_or_else(|| {
        panic!(
            "{} did not say which port it listens on; its log: {}",
            program.display(),
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    })
}

/// One start of chromedriver; `None` when it ends (or says nothing) without naming its port.
async fn try_start_driver(program: &Path, scratch: &Path) -> Option<(Child, u16)> {
    let mut driver = Command::new(program)
        .arg("--port=0")
        .arg(format!(
            "--log-path={}",
            scratch.join("chromedriver.log").display()
        ))
        // chromedriver's and Chromium's own temporary files end with the scratch directory.
        .env("TMPDIR", scratch)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("{}: {err}", program.display()));
    let stdout = driver.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            // "ChromeDriver was started successfully on port 41981."
            if let Some((_, rest)) = line.split_once("started successfully on port ") {
                return rest.trim_end_matches('.').trim().parse::<u16>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    let Some(port) = port else {
        let _ = driver.start_kill();
        let _ = driver.wait().await;
        return None;
    };
    // Keep reading, so that a chatty chromedriver never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some((driver, port))
}

/// Asks chromedriver's `/status` until it says it is ready for a session.
async fn wait_until_ready(port: u16) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut every = tokio::time::interval(Duration::from_millis(50));
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        every.tick().await;
        match http
            .get(format!("http://127.0.0.1:{port}/status"))
            .send()
            .await
        {
            Ok(response) => match response.json::<Value>().await {
                Ok(status) if status["value"]["ready"] == true => return,
                Ok(status) => last = status.to_string(),
                Err(err) => last = err.to_string(),
            },
            Err(err) => last = err.to_string(),
        }
    }
    panic!("chromedriver on port {port} was not ready within {PATIENCE:?}: {last}");
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}
