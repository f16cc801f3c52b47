"""The report reads at a glance: index.html opens with the claims table and
each section's verdict, every image loads in a real headless browser, PNGs
are written at >= 150 dpi."""

import json
import os
import re
import shutil
import struct
import subprocess

import pytest

from gradcore import experiments as ex
from gradcore.experiments.clipping import clipping_study

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

CHECK = """<script>window.addEventListener("load", function () {
 var imgs = Array.prototype.slice.call(document.images).map(function (i) {
   return [i.getAttribute("src"), i.complete, i.naturalWidth]; });
 var t = document.getElementById("claims-table");
 var v = Array.prototype.slice.call(document.querySelectorAll("#claims-table .verdict")).map(function (s) {
   return s.textContent; });
 var pre = document.createElement("pre");
 pre.textContent = "GC" + "CHECK" + JSON.stringify({images: imgs, rows: t ? t.rows.length : -1,
   first: document.querySelector("h2") ? document.querySelector("h2").id : null, verdicts: v}) + "GC" + "END";
 document.body.appendChild(pre);
});</script>"""


def _report(tmp_path, plots=True):
    results = {
        "chain": ex.chain_table(),
        "bptt": ex.bptt_sweep(radii=(0.9, 1.1), lengths=(10,), hidden=4),
        "clipping": clipping_study(T=10, steps=30, hidden=8, seeds=2, eval_size=32),
        "initialization": ex.initialization_study(depth=6, width=8, steps=20, seeds=2, heldout=32),
    }
    return results, ex.write_report(results, tmp_path, plots=plots)


def _png_dpi(path):
    data = open(path, "rb").read()
    i = data.find(b"pHYs")
    if i < 0:
        return None
    x, _, unit = struct.unpack(">IIB", data[i + 4:i + 13])
    return x * 0.0254 if unit == 1 else None


def test_index_opens_with_every_claim_and_verdict(tmp_path):
    results, rep = _report(tmp_path, plots=False)
    html = open(rep.index).read()
    body = html[html.index("<body>"):]
    # the claims table comes before the first section
    assert body.index('id="claims-table"') < body.index('<h2 id="chain"')
    table = body[body.index('id="claims-table"'):body.index("</table>")]
    for key in ("clipping", "initialization"):
        r = results[key]
        assert f"verdict <span class=\"verdict\">{r.verdict}</span>" in table
        for c in r.claims:
            assert c["measured"].replace("'", "&#x27;") in table
            assert ('<tr class="holds">' if c["holds"] else '<tr class="fails">') in table
    assert "no claims (a measurement)" in table  # chain and bptt measure, they claim nothing
    n = sum(len(results[k].claims) for k in ("clipping", "initialization"))
    assert table.count("<tr class=\"holds\">") + table.count("<tr class=\"fails\">") == n


def test_pngs_at_150_dpi_and_every_plot_names_its_experiment(tmp_path):
    pytest.importorskip("matplotlib")
    results, rep = _report(tmp_path)
    names = {"chain": "1x1 chain", "bptt": "BPTT", "clipping": "Clipping study",
             "initialization": "Initialization study"}
    for key, res in results.items():
        dpi = _png_dpi(tmp_path / f"{key}.png")
        assert dpi is not None and dpi >= 149.9, (key, dpi)
        for ax in res._figure().axes:
            assert names[key] in ax.get_title(), (key, ax.get_title())


def _browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def test_index_loads_in_a_headless_browser(tmp_path):
    pytest.importorskip("matplotlib")
    browser = _browser()
    if browser is None:
        pytest.skip("no headless browser installed (apt-get install chromium; .ci/run installs it)")
    results, rep = _report(tmp_path)
    html = open(rep.index).read()
    check = tmp_path / "index-check.html"  # next to index.html, so the image paths resolve the same way
    check.write_text(html.replace("</body>", CHECK + "</body>"))
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                           "--dump-dom", check.as_uri()], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, HOME=str(tmp_path)))
    found = re.findall(r"GCCHECK(.*?)GCEND", proc.stdout)
    assert found, f"the browser produced no result: rc {proc.returncode}, {proc.stderr[-2000:]}"
    got = json.loads(found[-1])
    pngs = sorted(f for f in rep.files if f.endswith(".png"))
    assert sorted(src for src, _, _ in got["images"]) == pngs
    for src, complete, width in got["images"]:
        assert complete and width > 0, f"{src} did not load"
    assert got["first"] == "claims"  # the page opens with the claims
    n = sum(len(r.claims) for r in results.values() if hasattr(r, "claims"))
    assert got["rows"] >= n + 1
    assert got["verdicts"] == [results["clipping"].verdict, results["initialization"].verdict]
