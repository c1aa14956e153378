"""The page's one script: keep the workspace current without a reload wiping what is typed."""

SCRIPT = """
(function () {
  "use strict";
  function typing(region) {
    var a = document.activeElement;
    return !!(a && region && region.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName));
  }
  function swap(fresh, id, onlyWhenChanged) {
    var now = document.getElementById(id), next = fresh.getElementById(id);
    if (!now || !next || typing(now)) return;
    if (onlyWhenChanged && now.dataset.key === next.dataset.key) return;
    now.innerHTML = next.innerHTML;
    now.dataset.key = next.dataset.key || "";
  }
  async function refresh() {
    try {
      var response = await fetch(location.href, {cache: "no-store"});
      var fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      swap(fresh, "live", false);
      swap(fresh, "modals", true);
    } catch (e) { /* the emulator restarting: try again on the next tick */ }
  }
  setInterval(refresh, 1500);
})();
"""
