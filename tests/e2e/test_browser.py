"""Every page in a real browser, and a tiny training job started by clicking."""

import re
from pathlib import Path

import pytest

from cae import lecture

PAGES = [
    ("", "Overview"),
    ("data", "Data"),
    ("train", "Train"),
    ("kernels", "First-layer kernels"),
    ("latent", "Latent space"),
    ("classifier", "Classifier"),
    ("try_image", "Try an image"),
]


def open_page(page, server, path: str, title: str, timeout: float = 60_000) -> None:
    page.goto(f"{server.url}/{path}")
    page.get_by_role("heading", name=re.compile(re.escape(title))).first.wait_for()
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


@pytest.mark.parametrize("path, title", PAGES)
def test_every_page_loads_without_an_exception(page, server, screenshots, path, title):
    open_page(page, server, path, title, timeout=300_000 if path == "latent" else 60_000)  # its first view computes
    if path in ("kernels", "classifier"):
        page.locator(".js-plotly-plot").first.wait_for()
        assert page.locator(".js-plotly-plot").count() >= 3
    if path in ("try_image", "data"):
        page.locator(".js-plotly-plot").nth(1 if path == "try_image" else 0).wait_for()
    page.wait_for_timeout(500)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Lecture preset" in viewed_run(page)  # the pretrained run opens first
    readable_charts(page, 14)
    accessible(page)
    page.screenshot(path=str(screenshots / f"{path or 'overview'}.png"), full_page=True)


def accessible(page) -> None:
    """axe-core finds no serious or critical violation, and every chart carries a text equivalent."""
    from axe_playwright_python.sync_playwright import Axe

    # a rerun greys its elements for a moment (Streamlit's "stale" look): measure the page at rest
    page.wait_for_function(
        '() => !document.querySelector(\'[data-stale="true"], [data-testid="stStatusWidget"]\')', timeout=60_000
    )
    found = [v for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert not found, [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in found]
    labels = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(
        el => (el.closest('[role=figure][aria-label]') || {getAttribute: () => ''}).getAttribute('aria-label'))""")
    assert all(label and len(label) > 20 for label in labels), labels


def readable_charts(page, smallest: float) -> None:
    """Every chart's text is at least `smallest` px, and no legend, title or subplot title covers another."""
    for chart in page.evaluate(CHART_TEXT_JS):
        assert chart["smallest"] is None or chart["smallest"] >= smallest, chart
        assert not chart["legend_overlaps"] and not chart["title_overlaps"] and not chart["title_cut"], chart


def viewed_run(page) -> str:
    """The label of the run picked in the sidebar (a combobox: its text is the input's value)."""
    return page.get_by_role("combobox", name="Run being viewed").input_value()


def set_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    page.wait_for_timeout(300)


def wait_for_training(page, server, pattern: str = "Training finished in", timeout: float = 600_000) -> None:
    """Wait for a training job's end sentence. A real training on a shared 2-core machine: the bound
    is generous, and a timeout says what the page and the server showed instead of only "timeout"."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.get_by_text(re.compile(pattern)).first.wait_for(timeout=timeout)
    except PlaywrightTimeout:
        shown = page.locator('section.stMain, [data-testid="stMain"]').first.inner_text()[-1500:]
        log = Path(server.log.name).read_text(errors="replace")[-2000:]
        raise AssertionError(
            f"no {pattern!r} after {timeout / 1000:.0f} s.\nThe page shows:\n{shown}\nThe server's log ends:\n{log}"
        ) from None


def test_a_tiny_training_job_from_the_train_page(page, server, screenshots):
    open_page(page, server, "train", "Train")
    set_number(page, "Autoencoder epochs", 1)
    set_number(page, "Classifier epochs (0 = autoencoder only)", 1)
    page.get_by_label("Training images").click()
    page.get_by_role("option", name="Custom size").click()
    set_number(page, "How many training images", 256)
    set_number(page, "Test images (0 = the whole test split)", 200)
    page.get_by_role("button", name="Train", exact=True).click()
    wait_for_training(page, server)
    assert viewed_run(page).startswith("1 + 1 epochs") and "run=z1024-bilinear-ae1-clf1-" in page.url
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(screenshots / "train-finished.png"), full_page=True)


# --- the README's commands, run the way a new user runs them ------------------------------------


def test_a_new_user_trains_with_the_defaults_and_keeps_seeing_the_new_run(browser, new_user_server, screenshots):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_page(page, new_user_server, "train", "Train")
        assert page.get_by_role("radio", name="Small data").is_checked()
        page.get_by_role("button", name="Train", exact=True).click()
        wait_for_training(page, new_user_server)
        runs = [p.name for p in (new_user_server.clone / "runs").iterdir() if not p.name.startswith(".")]
        assert len(runs) == 1 and runs[0].startswith("z1024-bilinear-ae20-clf10")  # in the clone's ./runs
        assert viewed_run(page).startswith("20 + 10 epochs, batch 100, on bundled sample")
        for link, title in (("Kernels", "First-layer kernels"), ("Classifier", "Classifier")):
            page.get_by_role("link", name=link).click()
            page.get_by_role("heading", name=re.compile(title)).first.wait_for()
            page.wait_for_url(re.compile(f"run={runs[0]}"))  # the page writes the run back into its address
            assert viewed_run(page).startswith("20 + 10 epochs"), link
        page.reload()  # a new session: the link in the address brings the same run back
        page.get_by_role("heading", name=re.compile("Classifier")).first.wait_for()
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
        assert viewed_run(page).startswith("20 + 10 epochs")
        assert page.locator('[data-testid="stException"]').count() == 0
        page.screenshot(path=str(screenshots / "new-user-classifier.png"), full_page=True)
    finally:
        context.close()


def test_own_photos_uploaded_as_a_zip_become_the_data_in_use(page, server, tmp_path, screenshots):
    import zipfile

    from PIL import Image

    archive = tmp_path / "my-photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for c, name in enumerate(("cups", "keys", "plants")):
            for i in range(5):
                picture = tmp_path / f"{name}{i}.jpg"
                Image.new("RGB", (120, 90), (80 * c, 40 * i, 200 - 60 * c)).save(picture)
                z.write(picture, f"my-photos/{name}/{i}.jpg")
    open_page(page, server, "data", "Data")
    page.get_by_text("Your own photos (upload a folder or a zip)").click()
    uploaders = page.locator('[data-testid="stFileUploader"]')
    uploaders.nth(1).locator('input[type="file"]').set_input_files(str(archive))
    page.get_by_role("button", name="Use these photos").click()
    page.get_by_role("heading", name=re.compile("In use: uploaded photos \\(3 classes\\)")).wait_for()
    assert page.get_by_text(re.compile("split 80% / 20%")).count() >= 1
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(screenshots / "data-upload.png"), full_page=True)
    # a failed upload (one class only) names the file chosen and leaves the 3-class upload in use
    broken = tmp_path / "one-class.zip"
    with zipfile.ZipFile(broken, "w") as z:
        for i in range(5):
            z.write(tmp_path / f"cups{i}.jpg", f"one-class/cups/{i}.jpg")
    uploaders.nth(1).locator('input[type="file"]').set_input_files(str(broken))
    uploaders.nth(1).get_by_text("one-class.zip").wait_for()  # the page has the new file: a click now sends it
    page.wait_for_function(IDLE_JS, timeout=60_000)
    page.get_by_role("button", name="Use these photos").click()
    error = page.locator('[data-testid="stAlert"]', has_text="one-class.zip")
    error.wait_for(timeout=30_000)
    assert "The data in use is unchanged" in error.inner_text() and "cache" not in error.inner_text().lower()
    page.get_by_role("heading", name=re.compile("In use: uploaded photos \\(3 classes\\)")).wait_for()


# --- the worker process, seen from the browser ---------------------------------------------------


def children_named(parent: int, name: str) -> list[int]:
    """Processes whose parent is `parent` and whose name is `name` (from /proc)."""
    from pathlib import Path

    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            comm = (stat.parent / "comm").read_text().strip()
        except OSError:
            continue
        if int(fields[1]) == parent and comm == name:
            found.append(int(stat.parent.name))
    return found


def classroom_server(tmp_path, **settings):
    """`streamlit run` in classroom mode on the bundled sample, with its own runs and cache folders
    and these CAE_* settings."""
    from bench.appserver import AppServer

    env = {
        "CAE_RUNS": str(tmp_path / "runs"),
        "CAE_CACHE": str(tmp_path / "cache"),
        "CAE_DATA": "sample",
        "CAE_CLASSROOM": "1",
        **settings,
    }
    return AppServer(env, tmp_path / "server.log")


def test_in_a_class_a_zip_bomb_is_refused_on_what_it_unpacks_to_and_the_quota_is_unchanged(browser, tmp_path):
    """The probe's upload, from a browser: a ~40 KB zip of black bitmaps that unpacks to ~9 MB, in a
    class where a seat may upload 2 MB. Refused in a sentence naming the file; nothing counted."""
    import io
    import zipfile

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (600, 600)).save(buffer, "BMP")
    bomb = tmp_path / "holiday.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for c in ("sea", "sand"):
            for i in range(4):
                z.writestr(f"holiday/{c}/{i}.bmp", buffer.getvalue())
    assert bomb.stat().st_size < 100_000
    server = classroom_server(tmp_path, CAE_UPLOAD_MB="2")
    page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    page.set_default_timeout(60_000)
    try:
        open_page(page, server, "data", "Data")
        page.get_by_text("Your own photos (upload a folder or a zip)").click()
        page.locator('[data-testid="stFileUploader"]').nth(1).locator('input[type="file"]').set_input_files(str(bomb))
        page.get_by_role("button", name="Use these photos").click()
        error = page.locator('[data-testid="stAlert"]', has_text="holiday.zip")
        error.wait_for(timeout=30_000)
        assert "more than 2.0 MB, what this seat may still upload" in error.inner_text()
        assert page.get_by_text(re.compile(r"This seat has used 0\.0 MB of its 2 MB .*, 0 of its")).count() == 1
        uploads = tmp_path / "cache" / "uploads"
        assert not uploads.exists() or list(uploads.iterdir()) == []  # nothing written, nothing left
    finally:
        page.context.close()
        server.stop()


def test_a_killed_worker_shows_as_a_failed_job_the_next_job_runs_and_stopping_leaves_no_process(
    browser, tmp_path, screenshots
):
    import os
    import signal
    import time

    from bench.appserver import AppServer
    from tests.conftest import wait_until

    hold = tmp_path / "hold"
    hold.touch()
    env = {
        "CAE_RUNS": str(tmp_path / "runs"),
        "CAE_CACHE": str(tmp_path / "cache"),
        "CAE_DATA": "sample",
        "CAE_WORKER_HOLD": str(hold),
    }
    server = AppServer(env, tmp_path / "server.log")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    try:
        open_page(page, server, "train", "Train")
        set_number(page, "Autoencoder epochs", 1)
        set_number(page, "Classifier epochs (0 = autoencoder only)", 1)
        page.get_by_role("button", name="Train", exact=True).click()
        page.get_by_text("Your job").wait_for()
        wait_until(lambda: children_named(server.proc.pid, "cae-worker"), what="the worker started")
        worker = children_named(server.proc.pid, "cae-worker")[0]
        time.sleep(1)
        os.kill(worker, signal.SIGKILL)
        page.get_by_text(re.compile("The training process stopped unexpectedly")).wait_for(timeout=30_000)
        page.screenshot(path=str(screenshots / "train-worker-killed.png"), full_page=True)
        hold.unlink()
        set_number(page, "Seed", 1)
        page.get_by_role("button", name="Train", exact=True).click()
        wait_for_training(page, server)
        assert page.locator('[data-testid="stException"]').count() == 0
        survivor = children_named(server.proc.pid, "cae-worker")
        assert survivor and survivor[0] != worker
    finally:
        page.close()
        server.stop()
    wait_until(
        lambda: not any(os.path.exists(f"/proc/{pid}") for pid in survivor),
        timeout=15,
        what="no worker left after the server stopped",
    )


def test_train_settings_survive_leaving_the_page_while_a_job_runs(page, server):
    open_page(page, server, "train", "Train")
    set_number(page, "Batch size", 300)
    set_number(page, "Autoencoder epochs", 40)
    set_number(page, "Classifier epochs (0 = autoencoder only)", 0)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Your job").wait_for()
    page.get_by_role("link", name="Kernels").click()
    page.get_by_role("heading", name="First-layer kernels").first.wait_for()
    page.wait_for_timeout(3000)  # the Train page's live panel would have refreshed a few times
    page.get_by_role("link", name="Train").click()
    page.get_by_role("heading", name="Train").first.wait_for()
    from playwright.sync_api import expect  # retries while the page is still drawing, fails if the value is lost

    expect(page.get_by_label("Batch size", exact=True)).to_have_value("300", timeout=20_000)
    expect(page.get_by_label("Autoencoder epochs")).to_have_value("40", timeout=20_000)
    expect(page.get_by_label("Classifier epochs (0 = autoencoder only)")).to_have_value("0", timeout=20_000)
    page.get_by_role("button", name="Stop").click()


def test_while_a_job_trains_its_progress_takes_the_train_button_place_and_estimates_still_come(page, server):
    """After Train, "Your job" stands where the button stood (in view, no scrolling); a setting whose
    training step is not measured yet gets its estimate while the job trains, with no other input
    (the worker measures it between two of the job's batches; the page asks every 2 s)."""
    open_page(page, server, "train", "Train")
    set_number(page, "Autoencoder epochs", 60)  # still training when the estimate is asked for
    set_number(page, "Classifier epochs (0 = autoencoder only)", 0)
    button = page.get_by_role("button", name="Train", exact=True)
    button.scroll_into_view_if_needed()
    where = button.bounding_box()["y"]
    button.click()
    heading = page.get_by_role("heading", name="Your job")
    heading.wait_for()
    page.wait_for_timeout(500)
    box = heading.bounding_box()
    assert 0 <= box["y"] < 720 - 100 and abs(box["y"] - where) < 120, (where, box)
    page.get_by_role("radio", name="transpose").check(force=True)  # a step the worker has not timed
    page.get_by_text("Estimated time on this CPU").wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Stop").is_visible()  # still queued or training meanwhile
    page.get_by_role("button", name="Stop").click()


def test_the_try_page_shows_its_pictures_and_the_prediction_in_the_first_screen(page, server, screenshots):
    open_page(page, server, "try_image", "Try an image")
    page.locator(".js-plotly-plot").nth(1).wait_for()
    page.wait_for_timeout(500)
    for i in range(2):  # the reconstruction panel and the class probabilities
        box = page.locator(".js-plotly-plot").nth(i).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 720, (i, box)
    assert page.get_by_text(re.compile("Prediction: .*(right|wrong)")).count() == 1
    page.screenshot(path=str(screenshots / "try_image-first-screen.png"))


# Every clickable point's centre on the screen, with its customdata (a test image or kernel number).
MAP_POINTS_JS = """el => Array.from(el.querySelectorAll('.scatterlayer .trace')).flatMap(g => {
    const custom = g.__data__ && g.__data__[0] && g.__data__[0].trace && g.__data__[0].trace.customdata;
    return custom ? Array.from(g.querySelectorAll('path.point')).map((p, i) => {
        const b = p.getBoundingClientRect();
        return [custom[i], b.x + b.width / 2, b.y + b.height / 2];
    }) : [];
})"""


def test_clicking_a_point_on_the_latent_map_shows_that_image_and_its_neighbours(page, server, screenshots):
    open_page(page, server, "latent", "Latent space", timeout=300_000)
    chart = chart_named(page, "The code of each test image, in 2-D")
    points = settled_points(page, chart, 200)  # the sample's test images, once the map stands still

    def room(p):  # distance to the nearest other point: click one that no other point overlaps
        return min((p[1] - q[1]) ** 2 + (p[2] - q[2]) ** 2 for q in points if q is not p)

    box = chart.bounding_box()
    inside = [
        p
        for p in points[1:]
        if box["x"] + 30 < p[1] < box["x"] + box["width"] - 30 and box["y"] + 80 < p[2] < box["y"] + box["height"] - 30
    ]  # clear of the toolbar and the edges
    number, x, y = max(inside, key=room)
    click_point(page, chart, number, x, y)
    from playwright.sync_api import expect

    expect(page.get_by_label(re.compile("Test image number"))).to_have_value(str(number), timeout=60_000)
    page.get_by_text(re.compile(f"^test image {number}: ")).wait_for(timeout=60_000)
    assert page.get_by_text(re.compile("8 nearest training images by code")).count() == 1
    assert page.get_by_text(re.compile("8 nearest by raw pixels")).count() == 1
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(screenshots / "latent-clicked.png"), full_page=True)
    other = next(n for n, _, _ in points if n != number)  # type another number, then click the same point again
    page.get_by_label(re.compile("Test image number")).fill(str(other))
    page.get_by_label(re.compile("Test image number")).press("Enter")
    page.get_by_text(re.compile(f"^test image {other}: ")).wait_for(timeout=60_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    points = settled_points(page, chart, 200)  # the map was drawn again: find the point where it is now
    _, x, y = next(p for p in points if p[0] == number)
    click_point(page, chart, number, x, y)
    expect(page.get_by_label(re.compile("Test image number"))).to_have_value(str(number), timeout=60_000)


IDLE_JS = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def chart_named(page, alt_start: str):
    """The chart whose text equivalent (its aria-label) starts with `alt_start`: charts mount in
    any order, so "the first chart on the page" can be another one for a moment."""
    return page.locator(f'[role="figure"][aria-label^="{alt_start}"] .js-plotly-plot')


def settled_points(page, chart, count: int) -> list:
    """The chart's points once the page is idle, every image has loaded, the chart is scrolled into
    view and its points stand still (two reads 300 ms apart agree): conditions the page shows, not
    a retried click."""
    page.wait_for_function(IDLE_JS, timeout=60_000)
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=60_000)
    previous = None
    from playwright.sync_api import Error

    for _ in range(100):
        try:
            chart.scroll_into_view_if_needed()  # a no-op once in view; read after it: the points are where it left them
            points = chart.evaluate(MAP_POINTS_JS)
        except Error:  # a rerun replaced the chart's element meanwhile: it is not standing still yet
            points = None
        if points is not None and len(points) == count and points == previous:
            return points
        previous = points
        page.wait_for_timeout(300)
    raise AssertionError(f"the chart never settled on {count} points")


def click_point(page, chart, number: int, x: float, y: float) -> None:
    """Hover point `number` (plotly picks the point under the pointer on hover), then click it once
    where it is now: a late layout shift of the page moves the chart, not the point's number."""
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    _, x, y = next(p for p in chart.evaluate(MAP_POINTS_JS) if p[0] == number)
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def click_kernel(page, number: int) -> None:
    """Click kernel `number` on the kernel sheet once, after it has settled; the number input must show it."""
    from playwright.sync_api import expect

    sheet = chart_named(page, "The 64 first-layer kernels at snapshot")
    _, x, y = next(p for p in settled_points(page, sheet, 64) if p[0] == number)  # one invisible square a kernel
    click_point(page, sheet, number, x, y)
    expect(page.get_by_label("Kernel (or click one)")).to_have_value(str(number), timeout=30_000)


def test_the_kernel_timeline_moves_and_a_clicked_kernel_is_chosen(page, server, screenshots):
    open_page(page, server, "kernels", "First-layer kernels")
    from playwright.sync_api import expect

    slider = page.get_by_role("slider", name="Snapshot")
    slider.wait_for()
    page.wait_for_function(IDLE_JS, timeout=60_000)  # a rerun redraws the slider and would drop its focus
    before = slider.get_attribute("aria-valuenow")
    slider.focus()
    page.keyboard.press("Home")
    expect(slider).not_to_have_attribute("aria-valuenow", before, timeout=20_000)
    page.get_by_text("initial (random)").first.wait_for(timeout=20_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    click_kernel(page, 9)
    page.get_by_text("Kernel 9: its R, G and B weights").wait_for(timeout=30_000)
    page.get_by_label("Kernel (or click one)").fill("5")
    page.get_by_label("Kernel (or click one)").press("Enter")
    page.get_by_text("Kernel 5: its R, G and B weights").wait_for(timeout=30_000)
    click_kernel(page, 9)  # the same kernel again, after typing another: a second click still chooses it
    page.get_by_text("Kernel 9: its R, G and B weights").wait_for(timeout=30_000)
    page.screenshot(path=str(screenshots / "kernels-timeline.png"))


def wait_until(condition, timeout_s: float, page) -> None:
    """Poll a condition the page shows (every 200 ms) until it holds or the time is up."""
    for _ in range(int(timeout_s * 5)):
        if condition():
            return
        page.wait_for_timeout(200)
    assert condition()


def test_play_runs_through_the_snapshots_on_the_first_click_and_stops_when_turned_off(page, server):
    open_page(page, server, "kernels", "First-layer kernels")
    slider = page.get_by_role("slider", name="Snapshot")
    slider.wait_for()
    shown = page.get_by_text(re.compile(r"\(\d+ of \d+\), all snapshots")).first  # "(3 of 10), all snapshots…"

    def now() -> int:
        """The snapshot the page says it shows."""
        return int(re.search(r"\((\d+) of", shown.inner_text()).group(1))

    slider.focus()
    page.keyboard.press("Home")  # from the random start
    wait_until(lambda: now() == 0, 30, page)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    page.get_by_text("Play", exact=True).click()  # one click, no other input
    wait_until(lambda: now() >= 5, 30, page)
    page.get_by_text("Play", exact=True).click()  # off
    page.wait_for_timeout(1_500)  # at most one tick of the timer, and the rerun that stops it
    stopped = now()
    page.wait_for_timeout(4_000)
    assert now() == stopped, "Play went on after it was turned off"


# Every chart's text sizes, and what overlaps: the legend against the axis titles and the chart title,
# the chart title against subplot titles, and a chart title cut at the chart's edge.
CHART_TEXT_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
    const box = e => e.getBoundingClientRect();
    const visible = Array.from(el.querySelectorAll('text')).filter(t => t.textContent.trim() && box(t).width > 0);
    const sizes = visible.map(t => parseFloat(getComputedStyle(t).fontSize));
    const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    const legend = el.querySelector('.legend'), title = el.querySelector('.gtitle');
    const titles = Array.from(el.querySelectorAll('.xtitle, .ytitle, .gtitle')).filter(t => box(t).width > 0);
    const annotations = Array.from(el.querySelectorAll('.annotation')).filter(t => box(t).width > 0);
    return {title: title ? title.textContent : '', smallest: sizes.length ? Math.min(...sizes) : null,
            small: visible.filter(t => parseFloat(getComputedStyle(t).fontSize) < 14).slice(0, 4)
                .map(t => (t.getAttribute('class') || t.parentNode.getAttribute('class'))
                          + ':' + t.textContent.slice(0, 20)),
            legend_overlaps: legend ? titles.filter(t => hit(box(legend), box(t))).map(t => t.textContent) : [],
            title_overlaps: title ? [...annotations, ...Array.from(el.querySelectorAll('.xtitle, .ytitle'))]
                .filter(a => box(a).width > 0 && hit(box(title), box(a))).map(a => a.textContent) : [],
            title_cut: title ? box(title).right > box(el).right + 1 : false};
})"""


LECTURE_STEPS = len(lecture.STEPS)
FITS_JS = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const figures = Array.from(main.querySelectorAll(
        '.js-plotly-plot, [data-testid="stImage"] img, [data-testid="stDataFrame"]'))
        .filter(f => f.getBoundingClientRect().height > 0);
    const text = main.querySelector('[data-testid="stMarkdownContainer"] p');
    const answer = Array.from(main.querySelectorAll('[data-testid="stMarkdownContainer"]'))
        .find(m => /You predicted|No prediction/.test(m.textContent));
    const verdict = Array.from(main.querySelectorAll('[data-testid="stMarkdownContainer"]'))
        .find(m => /As you predicted|Not quite|Right within the noise/.test(m.textContent));
    return {scroll: [main.scrollWidth, main.clientWidth, document.documentElement.scrollWidth, window.innerWidth],
            height: [main.scrollHeight, document.scrollingElement.scrollHeight, window.innerHeight],
            answer: [answer, verdict].map(a => a ? a.getBoundingClientRect().bottom : null),
            bottoms: figures.map(f => f.getBoundingClientRect().bottom), figures: figures.length,
            font: parseFloat(getComputedStyle(text).fontSize),
            sidebar: !!document.querySelector('[data-testid="stSidebar"]') &&
                     getComputedStyle(document.querySelector('[data-testid="stSidebar"]')).display !== 'none'};
}"""


@pytest.mark.parametrize("step", range(1, LECTURE_STEPS + 1))
def test_every_lecture_step_fits_a_projector_after_its_reveal(page, server, screenshots, step):
    page.goto(f"{server.url}/lecture?step={step}")
    page.get_by_role("heading", name=f"{step}/{LECTURE_STEPS} · ").wait_for()
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    idle = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
    page.get_by_role("button", name="Next →").wait_for()
    page.wait_for_function(idle, timeout=60_000)  # the step is drawn
    reveal = page.get_by_role("button", name="Reveal")
    asked = reveal.count() > 0
    if asked:  # once, no retry: a reveal lost by a lost session fails here
        page.get_by_role("radio").first.check(force=True)  # with the mouse, as a lecturer does
        page.wait_for_function(f"() => document.querySelector('input[type=radio]:checked') && ({idle})()")
        page.wait_for_timeout(500)  # the guess's rerun has finished
        reveal.click()
        page.get_by_text("You predicted").wait_for(timeout=30_000)
    page.wait_for_function(idle, timeout=60_000)
    page.wait_for_function(f"() => ({FITS_JS})().figures > 0", timeout=30_000)
    page.wait_for_timeout(800)
    seen = page.evaluate(FITS_JS)
    page.screenshot(path=str(screenshots / f"lecture-{step}.png"))
    main_width, main_client, doc_width, window_width = seen["scroll"]
    assert main_width <= main_client and doc_width <= window_width, seen  # no horizontal scrolling
    assert seen["figures"] >= 1 and max(seen["bottoms"]) <= 720, seen  # the figure is in the first screen
    # the lecturer's screen: nothing to scroll, the revealed answer and its verdict in view
    assert max(seen["height"][:2]) <= seen["height"][2] == 720, seen
    assert all(bottom is None or bottom <= 720 for bottom in seen["answer"]), seen
    if asked:
        assert seen["answer"][0] is not None, seen
    assert seen["font"] >= 18 and not seen["sidebar"], seen
    nav = page.get_by_role("button", name="Next →").bounding_box()
    assert nav["y"] + nav["height"] <= 720, nav  # Next stays in view after the reveal
    readable_charts(page, 16)  # the presenter view: every chart text at least 16 px
    accessible(page)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_presenter_clicker_moves_through_the_lecture(page, server):
    """PageDown and PageUp, what presenter clickers send, press Next and Back, and "." Reveal, whatever
    has the focus: also after a prediction clicked with the mouse, or the presenter toggle."""
    idle = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
    page.goto(f"{server.url}/lecture?step=2")
    page.get_by_role("heading", name=f"2/{LECTURE_STEPS} · ").wait_for()
    page.wait_for_function(idle, timeout=60_000)
    page.get_by_role("button", name="Next →").wait_for()
    page.wait_for_timeout(1_000)  # the page's keyboard shortcuts are bound once its buttons are drawn
    page.get_by_role("radio").first.check(force=True)  # with the mouse: the focus is now in the radio group
    page.wait_for_function(f"() => document.activeElement.type === 'radio' && ({idle})()")
    page.wait_for_timeout(500)
    page.keyboard.press(".")
    page.get_by_text("You predicted").wait_for(timeout=30_000)
    page.wait_for_function(idle, timeout=60_000)
    page.get_by_role("switch").first.focus()  # the presenter toggle has the focus
    page.keyboard.press("PageDown")
    page.get_by_role("heading", name=f"3/{LECTURE_STEPS} · ").wait_for(timeout=30_000)
    page.wait_for_function(idle, timeout=60_000)
    page.get_by_role("radio").first.check(force=True)
    page.wait_for_function(f"() => document.activeElement.type === 'radio' && ({idle})()")
    page.wait_for_timeout(500)
    page.keyboard.press("PageUp")
    page.get_by_role("heading", name=f"2/{LECTURE_STEPS} · ").wait_for(timeout=30_000)


def revealed_step(page, number: int) -> None:
    """The lecture shows step `number` with its reveal (the verdict line)."""
    page.get_by_role("heading", name=f"{number}/{LECTURE_STEPS} · ").wait_for(timeout=60_000)
    page.get_by_text(re.compile("As you predicted|Not quite|Right within the noise")).wait_for(timeout=30_000)


def test_leaving_a_step_for_its_live_page_and_coming_back_keeps_the_step_and_its_reveal(page, server):
    """One press of the browser's Back returns to the step: each page change leaves one history
    entry (it used to leave one per address key the app wrote, so Back landed on the live page again,
    mostly when the machine was busy)."""
    idle = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
    page.goto(f"{server.url}/lecture?step=finetune")
    page.get_by_role("heading", name=f"5/{LECTURE_STEPS} · ").wait_for()
    page.wait_for_function(idle, timeout=60_000)
    page.get_by_role("radio").first.check(force=True)
    page.wait_for_function(idle, timeout=60_000)
    page.get_by_role("button", name="Reveal").click()
    revealed_step(page, 5)
    for way_back in ("browser", "back link", "sidebar"):
        page.get_by_text("Open this step's live page").click()
        page.get_by_role("heading", name=re.compile("Classifier")).first.wait_for()
        page.wait_for_function(idle, timeout=60_000)
        if way_back == "browser":
            page.go_back()
        elif way_back == "back link":
            page.get_by_text("Back to Lecture mode, step 5").click()
        else:
            page.locator('[data-testid="stSidebarNav"]').get_by_text("Lecture mode").click()
        revealed_step(page, 5)


def test_the_browser_back_button_returns_to_the_page_before(page, server):
    """Each sidebar click leaves one history entry, so Back goes one page back, with the run kept."""
    open_page(page, server, "train", "Train")
    for link, path in (("Kernels", "kernels"), ("Classifier", "classifier")):
        page.locator('[data-testid="stSidebarNav"]').get_by_text(link, exact=True).click()
        page.wait_for_url(re.compile(f"/{path}($|\\?)"))
        page.wait_for_function(IDLE_JS, timeout=60_000)
    for path, title in (("kernels", "First-layer kernels"), ("train", "Train")):
        page.go_back()
        page.wait_for_url(re.compile(f"/{path}($|\\?)"), timeout=30_000)
        page.get_by_role("heading", name=re.compile(title)).first.wait_for(timeout=30_000)
        page.wait_for_function(IDLE_JS, timeout=60_000)
        assert "Lecture preset" in viewed_run(page)


def test_the_live_lecture_step_learns_on_the_sample(page, server, screenshots):
    """Step 3's live run on the bundled sample: the page's sentence, written from the finished run,
    says the fine-tuned classifier ended above chance beyond the noise; the test checks the number."""
    page.goto(f"{server.url}/lecture?step=autoencoder")
    page.get_by_role("heading", name=f"3/{LECTURE_STEPS} · ").wait_for()
    page.get_by_role("button", name=re.compile("Train it live: 1,000 images of bundled sample")).click(timeout=120_000)
    wait_for_training(page, server, "The fine-tuned classifier reached")
    sentence = page.get_by_text(re.compile("The fine-tuned classifier reached"))
    text = sentence.inner_text()
    accuracy = float(re.search(r"reached ([0-9.]+)% on 200 test images", text).group(1))
    assert accuracy - 10 > 2 * 100 * (0.1 * 0.9 / 200) ** 0.5, text
    assert "above chance beyond the noise" in text and "not above" not in text
    assert page.get_by_role("button", name="Next →").bounding_box()["y"] < 720
    page.screenshot(path=str(screenshots / "lecture-3-live.png"))


def test_the_classifier_page_draws_the_label_budget_lines(page, server):
    open_page(page, server, "classifier", "Classifier")
    page.get_by_text("How many labels does pretraining save?").scroll_into_view_if_needed()
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('.js-plotly-plot')).some(
        el => el.layout && el.layout.title && String(el.layout.title.text).includes('Test accuracy against labels'))""",
        timeout=60_000,
    )
    names = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).find(
        el => String(el.layout.title.text).includes('Test accuracy against labels')).data.map(t => t.name)""")
    assert names == ["fine-tuned from the autoencoder", "frozen encoder + linear head", "from scratch (random init)"]
    assert (
        page.get_by_text(
            re.compile("The fine-tuned line is above scratch|Starting from the autoencoder|At no budget")
        ).count()
        >= 1
    )


def test_classroom_mode_two_seats_each_see_their_own_place_in_the_queue(browser, tmp_path, screenshots):
    """Two browsers are two seats, each issued by the server and kept in the browser's cookie (never
    in the address, so a shared link hands none over); a reload keeps it; while the first seat's
    job trains, the second seat's waits, and each sidebar says whose is where. A third browser
    opened on the first one's address gets a seat of its own."""
    hold = tmp_path / "hold"
    hold.touch()  # the first job holds before its first batch: the queue stays as it is while we look
    server = classroom_server(tmp_path, CAE_WORKER_HOLD=str(hold))
    seats = [browser.new_context(viewport={"width": 1280, "height": 720}).new_page() for _ in range(3)]

    def seat_code(page) -> str:
        page.get_by_text(re.compile(r"Your seat: ")).first.wait_for()
        return re.search(r"Your seat: (\S+)", page.locator('[data-testid="stSidebar"]').inner_text()).group(1)

    try:
        codes = []
        for seed, page in enumerate(seats[:2]):
            page.set_default_timeout(60_000)
            open_page(page, server, "train", "Train")
            codes.append(seat_code(page))
            page.wait_for_function("() => document.cookie.includes('cae_seat=')")  # kept by the browser
            assert "seat" not in page.url
            set_number(page, "Autoencoder epochs", 1)
            set_number(page, "Classifier epochs (0 = autoencoder only)", 1)
            set_number(page, "Seed", seed + 1)
            page.get_by_role("button", name="Train", exact=True).click()
            page.get_by_text("Your job").wait_for()
        assert len(set(codes)) == 2
        sidebar = []
        for page, code in zip(seats, codes):
            page.reload()  # a new session of the same browser: the same seat, so the same jobs are its own
            page.get_by_text(re.compile(r"Queue:")).first.wait_for()
            assert seat_code(page) == code
            sidebar.append(page.locator('[data-testid="stSidebar"]').inner_text())
        first, second = sidebar
        assert "1 waiting" in first and "yours is training" in first, first
        assert "1 waiting" in second and "yours is number 1" in second, second
        seats[2].goto(seats[0].url)  # the first student's address, shared: not their seat
        assert seat_code(seats[2]) not in codes
        assert "none of yours" in seats[2].locator('[data-testid="stSidebar"]').inner_text()
        seats[1].get_by_text(re.compile(r"Queue:")).first.scroll_into_view_if_needed()
        seats[1].screenshot(path=str(screenshots / "classroom-second-seat.png"))
    finally:
        hold.unlink(missing_ok=True)
        for page in seats:
            page.context.close()
        server.stop()


@pytest.mark.parametrize("trusted", [False, True])
def test_forged_forwarding_headers_buy_no_extra_seats(browser, tmp_path, trusted):
    """The probe's forgery: browsers on 127.0.0.1, each sending its own X-Forwarded-For. Streamlit's
    server takes those addresses as given; unless CAE_TRUSTED_PROXY=1 says a proxy on this machine
    writes the header, they are one address, and the seats-per-minute limit (2 here) holds for them
    together. With CAE_TRUSTED_PROXY=1, each forwarded address has its own limit."""
    server = classroom_server(tmp_path, CAE_SEATS_PER_MINUTE="2", **({"CAE_TRUSTED_PROXY": "1"} if trusted else {}))
    pages = [browser.new_context(extra_http_headers={"X-Forwarded-For": f"10.0.0.{i}"}).new_page() for i in range(1, 4)]
    try:
        refused = []
        for page in pages:
            page.set_default_timeout(60_000)
            page.goto(server.url)
            page.get_by_text(re.compile(r"Your seat: |new seats in the last minute")).first.wait_for()
            refused.append(page.get_by_text("new seats in the last minute").count() > 0)
        assert refused == ([False, False, False] if trusted else [False, False, True]), refused
    finally:
        for page in pages:
            page.context.close()
        server.stop()


def test_a_reload_keeps_the_reveal_but_a_new_browser_does_not(page, server, browser):
    """A lecturer's accidental reload shows the step revealed as it was, with the prediction; the
    reveal lives in the browser's session cookie, so a link opened elsewhere shows the question."""
    idle = IDLE_JS
    page.goto(f"{server.url}/lecture?step=classes")
    page.get_by_role("heading", name=f"6/{LECTURE_STEPS} · ").wait_for()
    page.wait_for_function(idle, timeout=60_000)
    page.get_by_role("radio", name="cat").check(force=True)
    page.wait_for_function(f"() => document.querySelector('input[type=radio]:checked') && ({idle})()")
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Reveal").click()
    page.get_by_text("You predicted cat.").wait_for(timeout=30_000)
    page.wait_for_function("() => document.cookie.includes('cae_reveals=')", timeout=30_000)
    page.reload()
    page.get_by_role("heading", name=f"6/{LECTURE_STEPS} · ").wait_for()
    page.get_by_text("You predicted cat.").wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Reveal").count() == 0
    elsewhere = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    try:
        elsewhere.goto(page.url)
        elsewhere.get_by_role("heading", name=f"6/{LECTURE_STEPS} · ").wait_for()
        elsewhere.get_by_role("button", name="Reveal").wait_for(timeout=30_000)
    finally:
        elsewhere.context.close()


def test_the_presenter_view_never_shows_the_sidebar_beside_the_page(server, browser):
    """The Lecture page's sidebar starts collapsed in the presenter view: it used to arrive beside
    the page and be hidden after (the page jumped 300 px right and back). An ordinary page's
    sidebar still arrives beside it, the part of its layout shift that is Streamlit's."""
    from bench.layout_shift import measure

    measure(browser, f"{server.url}/lecture", settle_ms=500)  # the server's first Lecture run imports it
    lecture_page = measure(browser, f"{server.url}/lecture", settle_ms=1500)
    assert "the sidebar arrives" not in lecture_page["causes"], lecture_page
    overview = measure(browser, f"{server.url}/", settle_ms=1500)
    assert "the sidebar arrives" in overview["causes"], overview
