"""Live arrival in the web view, in headless Chromium driven by Selenium (chromedriver).

usage: web_live.py HTTP_BASE SMTP_HOST:PORT SCREENSHOT_DIR

1. /web (the first page) is opened; once its EventSource is open, a message is sent over SMTP
   and the page must show it by itself (live.js reloads the first page on a delivery event).
2. The second page ("Older messages") must not reload: it shows the "New mail arrived" notice.
Prints one line per step with the time from the 250 to the page showing it; exits non-zero
(with the page's text) on failure."""
import smtplib, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, smtp, shots = sys.argv[1], sys.argv[2], sys.argv[3]
host, port = smtp.rsplit(":", 1)

opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
          "--no-first-run", "--window-size=1200,900"):
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
driver.set_page_load_timeout(30)


def stream_open():
    """Waits until the page's EventSource is connected (readyState 1)."""
    WebDriverWait(driver, 20).until(lambda d: d.execute_script(
        "return typeof es !== 'undefined' && es.readyState === 1"))


def send(subject):
    with smtplib.SMTP(host, int(port), timeout=30) as s:
        s.sendmail("live@b.test", ["alice@example.test"],
                   f"Subject: {subject}\r\n\r\narrived while the page was open\r\n")
    return time.monotonic()


def fail(why):
    print("FAIL:", why)
    print(driver.find_element(By.TAG_NAME, "body").text)
    driver.quit()
    sys.exit(1)


try:
    driver.get(base + "/web")
    stream_open()
    driver.execute_script("window.__marker = 1")
    sent = send("live arrival one")
    try:
        WebDriverWait(driver, 20).until(lambda d: "live arrival one" in d.find_element(By.TAG_NAME, "body").text)
    except Exception:
        fail("the first page did not show the new message")
    shown = time.monotonic()
    if driver.execute_script("return window.__marker === 1"):
        fail("the message is listed but the page did not reload (was it there before?)")
    driver.save_screenshot(f"{shots}/web-live-first-page.png")
    print(f"first page: reloaded and listed it {1000 * (shown - sent):.0f} ms after the 250")

    older = driver.find_element(By.PARTIAL_LINK_TEXT, "Older messages")
    older.click()
    WebDriverWait(driver, 20).until(lambda d: "cursor=" in d.current_url)
    stream_open()
    notice = driver.find_element(By.ID, "arrived")
    if notice.is_displayed():
        fail("the notice shows before anything arrived")
    driver.execute_script("window.__marker = 2")
    sent = send("live arrival two")
    try:
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "arrived").is_displayed())
    except Exception:
        fail("the second page did not show the new-mail notice")
    shown = time.monotonic()
    if not driver.execute_script("return window.__marker === 2"):
        fail("the second page reloaded (it must keep its place and show the notice)")
    driver.save_screenshot(f"{shots}/web-live-older-page.png")
    print(f"older page: notice shown {1000 * (shown - sent):.0f} ms after the 250, no reload")
finally:
    try:
        driver.quit()
    except Exception:
        pass
