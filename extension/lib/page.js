// Reading the page the user is on, as rendered (single-page apps and logged-in pages included):
// the live DOM, its address, title and selection. Nothing is fetched again.

// Pages no extension may read: the browser's own, and the extension stores.
const CLOSED = [/^(chrome|edge|brave|vivaldi|opera|about|view-source|devtools|chrome-extension|moz-extension):/i,
                /^https:\/\/(chromewebstore\.google\.com|chrome\.google\.com\/webstore|addons\.mozilla\.org|microsoftedge\.microsoft\.com\/addons)/i];

export class UnreadablePage extends Error {}

export function whyUnreadable(url) {
  if (!url) return "this tab has no page localsearch may read";
  if (CLOSED.some((pattern) => pattern.test(url))) {
    return "browser pages and extension stores cannot be read by extensions";
  }
  if (!/^https?:/i.test(url)) return "only web pages (http and https) can be asked about";
  return "";
}

// Runs in the page: what it shows now.
function snapshot() {
  return { url: location.href, title: document.title, html: document.documentElement.outerHTML,
           selection: String(getSelection() || "") };
}

export async function activeTab() {
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  return tab;
}

export async function readTab(tab) {
  const why = whyUnreadable(tab?.url);
  if (why) throw new UnreadablePage(`localsearch cannot read this page: ${why}.`);
  let results;
  try {
    results = await chrome.scripting.executeScript({ target: { tabId: tab.id }, func: snapshot });
  } catch (error) {
    throw new UnreadablePage(`localsearch cannot read this page: ${error.message}`);
  }
  const page = results?.[0]?.result;
  if (!page?.html) throw new UnreadablePage("localsearch cannot read this page: it returned nothing.");
  const why2 = whyUnreadable(page.url);
  if (why2) throw new UnreadablePage(`localsearch cannot read this page: ${why2}.`);
  return page;
}
