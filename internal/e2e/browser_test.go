package e2e

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"sleeper/pkg/watcher"
)

// screenshot rewrites docs/loading-page.png. It is a flag, off by default,
// so that an ordinary test run never changes the tree.
var screenshot = flag.Bool("screenshot", false, "write docs/loading-page.png from the browser test")

// firstPaintBudget is the loading page's promise: on screen within half a
// second of the navigation. Measured by bench/first-paint.sh.
const firstPaintBudget = 500 * time.Millisecond

// startBrowser starts Debian's headless Chromium for the test. Every tab
// opened from the returned context shares the one browser.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("install chromium (apt-get install chromium): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in a container
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Tabs run side by side: none may be throttled as a background tab.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("no-proxy-server", true), // loopback only, whatever the environment says
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(960, 640),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Do starts the browser, so that no measurement pays for it;
	// it must not run under a timeout, which would stop the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// newTab opens a tab that closes when the test ends. It emulates the
// light theme plus the given media features ("prefers-reduced-motion").
func newTab(t *testing.T, browser context.Context, features ...*emulation.MediaFeature) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(tab, 60*time.Second)
	t.Cleanup(cancelTimeout)
	features = append([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}, features...)
	media := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: features})
		return err
	})
	if err := chromedp.Do(ctx, media); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return ctx
}

// waitJS polls a JavaScript condition until it is true. It survives the
// page reloading under it, which a single chromedp.Poll would not.
func waitJS(t *testing.T, tab context.Context, expr string, d time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	body, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	t.Fatalf("timed out after %s waiting for %s (last error: %v); page:\n%s", d, what, lastErr, body)
}

func evalString(t *testing.T, tab context.Context, expr string) string {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// appURL is the browser's URL for a path on a container: its own
// <name>.localhost host (Chromium resolves *.localhost to loopback) on the
// proxy's port.
func (s *stack) appURL(name, pathQuery string) string {
	s.t.Helper()
	u, err := url.Parse(s.base)
	if err != nil {
		s.t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		s.t.Fatal(err)
	}
	return "http://" + net.JoinHostPort(name+".localhost", port) + pathQuery
}

// sleepingApp creates a managed app container that is not running.
func (s *stack) sleepingApp(base string, env ...string) string {
	s.t.Helper()
	return s.sleepingAppNamed(uniqueName(s.t, base), env...)
}

func (s *stack) sleepingAppNamed(name string, env ...string) string {
	s.t.Helper()
	s.run(name, false, append([]string{"APP_NAME=" + name}, env...), "hosts", name+".localhost")
	s.watcher(name)
	s.waitState(name, watcher.StateAsleep, 10*time.Second)
	return name
}

// browserCase is one scenario of TestBrowserLoadingPage, in its own tab.
type browserCase struct {
	name string
	run  func(t *testing.T, s *stack, browser context.Context)
}

// TestBrowserLoadingPage drives a real Chromium through sleeper: the page
// is there at once, turns into the app by itself, shows a failed wake,
// works without JavaScript, and API clients are still held rather than
// handed the page.
func TestBrowserLoadingPage(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	browser := startBrowser(t)
	cases := []browserCase{
		{"page then the app", browserShowsPageThenApp},
		{"lands on the app", browserLandsOnApp},
		{"wake error", browserWakeError},
		{"API client is held", browserAPIClientHeld},
		{"without JavaScript", browserWithoutJS},
	}
	if *screenshot {
		cases = append(cases, browserCase{"screenshot", takeScreenshot})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, s, browser)
		})
	}
}

// browserShowsPageThenApp: the loading page names the app and the path
// asked for, then the browser lands on exactly that URL by itself. How fast
// the page paints is a measurement, not a pass/fail matter: see
// TestBrowserFirstPaintBudget and bench/first-paint.sh.
func browserShowsPageThenApp(t *testing.T, s *stack, browser context.Context) {
	name := s.sleepingApp("paint", "START_DELAY=2s")
	target := s.appURL(name, "/some/path?x=1")
	tab := newTab(t, browser)
	measureFirstPaint(t, tab, target)
	checkLoadingPageThenApp(t, tab, name, target)
}

// TestBrowserFirstPaintBudget measures the time until the loading page is on
// screen against its 500 ms budget. It runs only with SLEEPER_BENCH=1
// (bench/first-paint.sh): a loaded machine paints late through no fault of
// sleeper's, so the budget is reported in BENCHMARKS.md, not asserted by
// `go test ./...`. The browser is warmed up first (its first tab pays for
// starting a renderer); the median of the rounds is reported.
func TestBrowserFirstPaintBudget(t *testing.T) {
	if os.Getenv("SLEEPER_BENCH") != "1" {
		t.Skip("measurement: run with SLEEPER_BENCH=1 (bench/first-paint.sh)")
	}
	s := startSleeper(t, stackOptions{})
	browser := startBrowser(t)
	warm := newTab(t, browser)
	if err := chromedp.Do(warm, chromedp.Navigate(s.appURL("warm-up", "/"))); err != nil {
		t.Fatalf("warm-up navigation: %v", err)
	}
	rounds := 5
	if n, err := strconv.Atoi(os.Getenv("SLEEPER_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	paints := make([]time.Duration, 0, rounds)
	for round := range rounds {
		name := s.sleepingApp(fmt.Sprint("paint", round), "START_DELAY=2s")
		target := s.appURL(name, "/")
		paints = append(paints, measureFirstPaint(t, newTab(t, browser), target))
	}
	slices.Sort(paints)
	median := paints[len(paints)/2]
	verdict := "within"
	if median > firstPaintBudget {
		verdict = "OVER"
	}
	fmt.Printf("first paint: median %s of %d rounds (min %s, max %s), %s the %s budget\n",
		median.Round(time.Millisecond), rounds, paints[0].Round(time.Millisecond),
		paints[len(paints)-1].Round(time.Millisecond), verdict, firstPaintBudget)
}

// measureFirstPaint navigates and returns the time until the loading page's
// status line is in the document.
func measureFirstPaint(t *testing.T, tab context.Context, target string) time.Duration {
	start := time.Now()
	if err := chromedp.Do(tab, chromedp.Navigate(target), chromedp.WaitReady(chromedp.ID("sleeper-step"))); err != nil {
		t.Fatalf("navigate %s: %v", target, err)
	}
	paint := time.Since(start)
	// The browser's own view: when the response came and when it painted.
	timing := evalString(t, tab, `(() => {
		const n = performance.getEntriesByType("navigation")[0] || {};
		const p = performance.getEntriesByName("first-contentful-paint")[0] || {};
		const r = (v) => Math.round(v || 0);
		return "response " + r(n.responseEnd) + " ms, first-contentful-paint " + r(p.startTime) + " ms, load " + r(n.loadEventEnd) + " ms";
	})()`)
	t.Logf("loading page present %s after navigate (%s)", paint.Round(time.Millisecond), timing)
	return paint
}

// checkLoadingPageThenApp checks what the loading page shows, then that the
// browser lands where it asked by itself.
func checkLoadingPageThenApp(t *testing.T, tab context.Context, name, target string) {
	if title := evalString(t, tab, `document.title`); title != "Starting "+name+"…" {
		t.Fatalf("title %q", title)
	}
	if shown := evalString(t, tab, `document.querySelector(".path code").textContent`); shown != "/some/path?x=1" {
		t.Fatalf("page shows the path as %q", shown)
	}
	// It then lands where it was asked: the app's own answer for that path
	// (the test app serves only "/", so this is its 404).
	waitJS(t, tab, `!document.getElementById("sleeper") && document.body.innerText.includes("404 page not found")`,
		15*time.Second, "the app's answer for /some/path")
	if loc := evalString(t, tab, `location.href`); loc != target {
		t.Fatalf("landed on %s, want %s", loc, target)
	}
}

// browserLandsOnApp: after a 2 s start the app replaces the page by
// itself, at the same URL, without a new history entry.
func browserLandsOnApp(t *testing.T, s *stack, browser context.Context) {
	name := s.sleepingApp("land", "START_DELAY=2s")
	target := s.appURL(name, "/?x=1")
	tab := newTab(t, browser)
	start := time.Now()
	if err := chromedp.Do(tab, chromedp.Navigate(target), chromedp.WaitReady(chromedp.ID("sleeper-step"))); err != nil {
		t.Fatalf("navigate %s: %v", target, err)
	}
	entries := evalString(t, tab, `String(history.length)`)
	// Only the page's own script may reload: nothing is done here but wait.
	waitJS(t, tab, fmt.Sprintf(`document.body.innerText.includes(%q)`, "hello from "+name), 20*time.Second, "the app")
	t.Logf("app on screen %s after navigate (START_DELAY=2s, wake took %s)",
		time.Since(start).Round(time.Millisecond), s.watcher(name).Info().LastWake.Round(time.Millisecond))
	if loc := evalString(t, tab, `location.href`); loc != target {
		t.Fatalf("landed on %s, want %s", loc, target)
	}
	// A reload, not a navigation: Back does not lead to the loading page.
	if n := evalString(t, tab, `String(history.length)`); n != entries {
		t.Fatalf("history length %s after landing, was %s on the loading page", n, entries)
	}
}

// browserWakeError: a container that exits at start shows why, with a
// Retry button that asks again.
func browserWakeError(t *testing.T, s *stack, browser context.Context) {
	name := s.sleepingApp("fail", "EXIT_AT_START=3")
	tab := newTab(t, browser)
	if err := chromedp.Do(tab, chromedp.Navigate(s.appURL(name, "/"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab, `!document.getElementById("sleeper-error").hidden`, 20*time.Second, "the error")
	if msg := evalString(t, tab, `document.getElementById("sleeper-error-text").textContent`); !strings.Contains(msg, "exited with code 3") {
		t.Fatalf("error text %q, want the exit code", msg)
	}
	if tag := evalString(t, tab, `document.getElementById("sleeper-retry").tagName`); tag != "BUTTON" {
		t.Fatalf("retry is a %s, want a button", tag)
	}
	// Retry reloads the page, which asks sleeper (and so the watcher) again.
	if err := chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](`window.beforeRetry = true`),
		chromedp.Click(chromedp.ID("sleeper-retry"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab, `window.beforeRetry === undefined && !document.getElementById("sleeper-error").hidden`,
		20*time.Second, "the error again after Retry")
}

// browserAPIClientHeld: while a browser looks at the page, a curl-like
// client (Accept: */*) is held and gets the app's own answer.
func browserAPIClientHeld(t *testing.T, s *stack, browser context.Context) {
	name := s.sleepingApp("api", "START_DELAY=2s")
	tab := newTab(t, browser)
	if err := chromedp.Do(tab, chromedp.Navigate(s.appURL(name, "/"))); err != nil {
		t.Fatal(err)
	}
	if evalString(t, tab, `String(!!document.getElementById("sleeper"))`) != "true" {
		t.Fatal("the browser did not get the loading page")
	}
	req, err := http.NewRequest(http.MethodGet, s.base+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = name + ".localhost"
	req.Header.Set("Accept", "*/*")
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != "hello from "+name+"\n" {
		t.Fatalf("API client got %d %q, want the app's answer", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Sleeper-Wake") == "" || resp.Header.Get("X-App-Name") != name {
		t.Fatalf("API client was not held through the wake: %v", resp.Header)
	}
}

// browserWithoutJS: with scripts off, the <noscript> meta refresh reloads
// the page until the app answers.
func browserWithoutJS(t *testing.T, s *stack, browser context.Context) {
	name := s.sleepingApp("nojs", "START_DELAY=2s")
	target := s.appURL(name, "/?x=1")
	tab := newTab(t, browser)
	noScript := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	})
	if err := chromedp.Do(tab, noScript, chromedp.Navigate(target)); err != nil {
		t.Fatal(err)
	}
	if title := evalString(t, tab, `document.title`); title != "Starting "+name+"…" {
		t.Fatalf("title %q, want the loading page", title)
	}
	waitJS(t, tab, fmt.Sprintf(`document.body.innerText.includes(%q)`, "hello from "+name), 20*time.Second, "the app")
	if loc := evalString(t, tab, `location.href`); loc != target {
		t.Fatalf("landed on %s, want %s", loc, target)
	}
}

// takeScreenshot saves the loading page as README shows it: a second wake,
// so that the estimate from the first is on the page, with reduced motion
// so that no transition is caught half-way. The container gets a plain
// name for the picture; only one screenshot run can use the engine at once.
func takeScreenshot(t *testing.T, s *stack, browser context.Context) {
	name := s.sleepingAppNamed("my-app", "START_DELAY=3s")
	if resp, _ := s.get(name+".localhost", "/"); resp.StatusCode != 200 {
		t.Fatalf("first wake: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.watcher(name).Sleep(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	tab := newTab(t, browser, &emulation.MediaFeature{Name: "prefers-reduced-motion", Value: "reduce"})
	if err := chromedp.Do(tab, chromedp.EmulateViewport(720, 480), chromedp.Navigate(s.appURL(name, "/dashboard"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab, `document.getElementById("sleeper-step").textContent.startsWith("waiting")`, 10*time.Second, "a later step")
	png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join("..", "..", "docs", "loading-page.png")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", out, len(png))
}
