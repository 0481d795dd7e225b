//! Asking the page: waiting for elements and scripts, reading text and
//! attributes, clicking, signing in through the form, and counting what
//! the page drew and fetched.

use super::*;

/// How many rows the table has in all, drawn or not (`aria-rowcount` counts
/// the header row too).
pub const ROW_COUNT_JS: &str =
    "return Number(document.getElementById('process-table').getAttribute('aria-rowcount')) - 1;";

/// How many pushed batches the page has drawn (each one's arrival-to-frame
/// time is kept for the page benchmark).
pub const PUSHED_FRAMES_JS: &str = "return window.procmonMeasure.pushToFrame.length;";

pub async fn pushed_frames(page: &Client) -> u64 {
    page.execute(PUSHED_FRAMES_JS, vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

pub async fn row_count(page: &Client) -> u64 {
    page.execute(ROW_COUNT_JS, vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

/// Scrolls the table from top to bottom, as a person would, and returns
/// every row seen: its position (`aria-rowindex`), pid and depth.
pub async fn all_rows(page: &Client) -> Vec<(u64, u32, u64)> {
    let seen = page
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const scroller = document.getElementById('tree-scroll');
             const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
             const seen = {};
             (async () => {
               scroller.scrollTop = 0;
               await frame();
               for (;;) {
                 for (const tr of document.querySelectorAll('#process-rows .row[data-key]')) {
                   seen[tr.getAttribute('aria-rowindex')] =
                     [Number(tr.dataset.key.split('@')[0]), Number(tr.getAttribute('aria-level'))];
                 }
                 if (scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 1) break;
                 scroller.scrollTop += Math.max(100, scroller.clientHeight / 2);
                 await frame();
               }
               done(seen);
             })();",
            vec![],
        )
        .await
        .expect("scroll through the table");
    let seen: BTreeMap<String, (u32, u64)> = serde_json::from_value(seen).unwrap();
    let seen: BTreeMap<u64, (u32, u64)> = seen
        .into_iter()
        .map(|(k, v)| (k.parse().unwrap(), v))
        .collect();
    seen.into_iter()
        .map(|(index, (pid, level))| (index, pid, level))
        .collect()
}

/// Waits for the sign-in form and signs in with it.
pub async fn fill_sign_in(page: &Client, name: &str, password: &str) {
    let field = wait_for_element(page, "#auth:not([hidden]) #signin-name").await;
    field.clear().await.unwrap();
    field.send_keys(name).await.unwrap();
    let field = page.find(Locator::Css("#signin-password")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(password).await.unwrap();
    click(page, "#signin-form button[type=submit]").await;
}

/// The table row of a process (its key is `pid@start_time`).
pub fn row_selector(pid: u32) -> String {
    format!("#process-rows .row[data-key^='{pid}@']")
}

/// Runs `script` until `ready` accepts its result, or fails naming `what`.
pub async fn eventually(
    page: &Client,
    what: &str,
    script: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = page
            .execute(script, vec![])
            .await
            .expect("run a script in the page");
        if ready(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "waited {PATIENCE:?} for {what}; last saw {value}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn wait_for_element(page: &Client, css: &str) -> fantoccini::elements::Element {
    page.wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("waited {PATIENCE:?} for `{css}`: {e}"))
}

pub async fn wait_until_gone(page: &Client, css: &str) {
    let script = format!("return document.querySelectorAll({}).length;", json!(css));
    eventually(page, &format!("`{css}` to disappear"), &script, |n| {
        n.as_u64() == Some(0)
    })
    .await;
}

pub async fn count(page: &Client, css: &str) -> usize {
    page.find_all(Locator::Css(css)).await.unwrap().len()
}

pub async fn click(page: &Client, css: &str) {
    wait_for_element(page, css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
}

pub async fn text_of(page: &Client, css: &str) -> String {
    // textContent, not the rendered text: what the DOM holds is what matters here.
    let script = format!("return document.querySelector({}).textContent;", json!(css));
    let value = page
        .execute(&script, vec![])
        .await
        .unwrap_or_else(|e| panic!("read `{css}`: {e}"));
    value
        .as_str()
        .unwrap_or_else(|| panic!("no element `{css}`"))
        .to_owned()
}

pub async fn attribute_of(page: &Client, css: &str, name: &str) -> u64 {
    let element = wait_for_element(page, css).await;
    let value = element
        .attr(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("`{css}` has no {name}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("`{css}` {name}={value} is not a number"))
}

pub async fn attribute_of_text(page: &Client, css: &str, name: &str) -> String {
    let element = wait_for_element(page, css).await;
    element
        .attr(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("`{css}` has no {name}"))
}

pub async fn aria_expanded(page: &Client, css: &str) -> Option<bool> {
    let element = page.find(Locator::Css(css)).await.unwrap();
    element
        .attr("aria-expanded")
        .await
        .unwrap()
        .map(|v| v == "true")
}

pub async fn has_class(page: &Client, css: &str, class: &str) -> bool {
    let element = page.find(Locator::Css(css)).await.unwrap();
    let classes = element.attr("class").await.unwrap().unwrap_or_default();
    classes.split_whitespace().any(|c| c == class)
}

/// Opens the page on a host, signs in, and waits until changes are pushed.
pub async fn open_live(page: &Client, app: &TestApp, host: &str) {
    page.goto(&format!("{}/#host={host}", app.address))
        .await
        .unwrap();
    fill_sign_in(page, TEST_USER, TEST_PASSWORD).await;
    wait_for_element(page, "#process-rows .row[data-key]").await;
    wait_for_element(page, "#connection[data-live='stream']").await;
}

/// How many full listings the page has fetched.
pub async fn listing_fetches(page: &Client) -> u64 {
    resource_count(page, "/api/processes/").await
}

/// How many finished requests the page made to URLs containing `part`.
pub async fn resource_count(page: &Client, part: &str) -> u64 {
    page.execute(
        "return performance.getEntriesByType('resource').filter(e => e.name.includes(arguments[0])).length;",
        vec![json!(part)],
    )
    .await
    .unwrap()
    .as_u64()
    .unwrap()
}
