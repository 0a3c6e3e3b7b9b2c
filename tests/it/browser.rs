//! A minimal WebDriver client for the report's browser tests: Debian's chromedriver driving
//! headless Chromium over plain HTTP (attohttpc + serde_json, both already dependencies).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A chromedriver process and one browser session; both end when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with no network besides file: and data:.
    pub fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) is installed by scripts/install-deps.sh --test");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while attohttpc::get(format!("{base}/status")).send().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-quic", "--no-first-run", "--window-size=1280,1000",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            _profile: profile,
        };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().expect("session id").to_string();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let req = match method {
            "GET" => attohttpc::get(&url),
            "DELETE" => attohttpc::delete(&url),
            _ => attohttpc::post(&url),
        };
        let resp = match body {
            Some(b) => req.json(&b).unwrap().send(),
            None if method == "POST" => req.json(&json!({})).unwrap().send(),
            None => req.send(),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    /// Opens a URL.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Waits until the report says it has rendered.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.js("return document.body && document.body.dataset.ready === '1';") != json!(true)
        {
            assert!(
                Instant::now() < deadline,
                "the report never finished rendering"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap().to_string()
    }

    /// Types into an input the way a person does (real key events).
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Picks an option of a select as a person would (the change event fires).
    pub fn select(&self, css: &str, value: &str) {
        let script = format!(
            "const s = document.querySelector({css:?}); s.value = {value:?}; s.dispatchEvent(new Event('change')); return s.value;"
        );
        assert_eq!(self.js(&script), json!(value), "no option {value} in {css}");
    }

    /// Browser log entries (console messages, failed loads) so far.
    pub fn log(&self, kind: &str) -> Vec<Value> {
        self.call("POST", "/se/log", Some(json!({ "type": kind })))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Console errors and failed loads (browser log entries of level SEVERE) so far.
    pub fn console_errors(&self) -> Vec<Value> {
        self.log("browser")
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .collect()
    }

    /// Every request the browser made, as (document that made it, requested URL), from the
    /// performance log.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.log("performance")
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
            .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
            .filter_map(|m| {
                let p = &m["message"]["params"];
                Some((
                    p["documentURL"].as_str()?.to_string(),
                    p["request"]["url"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver and returns its result.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
    }

    /// Emulates a screen of `width` x `height` CSS pixels; `phone` also emulates a mobile
    /// browser (the viewport meta tag applies, as on a phone, at a device pixel ratio of 2).
    pub fn viewport(&self, width: u32, height: u32, phone: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": if phone { 2 } else { 1 }, "mobile": phone}),
        );
    }

    /// Emulates the system's light or dark theme (`prefers-color-scheme`).
    pub fn color_scheme(&self, scheme: &str) {
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        );
    }

    /// Clicks an element as a person would (WebDriver's element click: scrolled into view,
    /// real pointer events).
    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), None);
    }

    /// Moves the mouse to the centre of an element, offset by (`dx`, `dy`) CSS pixels.
    pub fn hover(&self, css: &str, dx: i64, dy: i64) {
        let id = self.element(css);
        let origin = json!({ "element-6066-11e4-a52e-4f735466cecf": id });
        self.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                "actions": [{"type": "pointerMove", "duration": 0, "origin": origin, "x": dx, "y": dy}]}]})),
        );
    }

    /// Taps an element with a finger (touch pointer events), offset by (`dx`, `dy`) CSS pixels
    /// from its centre.
    pub fn tap(&self, css: &str, dx: i64, dy: i64) {
        let id = self.element(css);
        let origin = json!({ "element-6066-11e4-a52e-4f735466cecf": id });
        self.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "pointer", "id": "finger", "parameters": {"pointerType": "touch"},
                "actions": [{"type": "pointerMove", "duration": 0, "origin": origin, "x": dx, "y": dy},
                            {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]}]})),
        );
        self.call("DELETE", "/actions", None);
    }

    fn element(&self, css: &str) -> String {
        let el = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        el.as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A PNG screenshot of part of the page, `height` CSS pixels from `top` (page coordinates,
    /// beyond the viewport; cut at the end of the page), as wide as the page.
    pub fn page_screenshot(&self, top: f64, height: f64) -> Vec<u8> {
        use base64::Engine;
        let size = &self.cdp("Page.getLayoutMetrics", json!({}))["cssContentSize"];
        let page_height = size["height"].as_f64().unwrap();
        let shot = self.cdp(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": top, "width": size["width"],
                            "height": height.min(page_height - top).max(1.0), "scale": 1}}),
        );
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap()
    }

    /// A PNG screenshot of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = attohttpc::delete(format!("{}/session/{}", self.base, self.session)).send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
