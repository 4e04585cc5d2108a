/* 热点 page: clusters of recent petitions ranked by heat (GET /v1/hotspots), a bar chart of the top
 * ones, a drill-down into one, and the .xlsx export. Same key handling as the console: the key is read
 * from this tab's sessionStorage and sent as X-API-Key; API text is inserted with textContent only. */
"use strict";

(function () {
  const KEY_STORAGE = "triage.apiKey";
  const CHART_SIZE = 15;
  const { $, el } = window.TriagePage;  // common.js
  const state = { key: sessionStorage.getItem(KEY_STORAGE), answer: null, vocabulary: null };
  const dateFormat = new Intl.DateTimeFormat("zh-CN", { dateStyle: "medium", timeZone: "Asia/Shanghai" });
  const fmtDate = (value) => (value ? dateFormat.format(new Date(value)) : "—");

  function message(text) {
    $("hotspots-message").textContent = text || "";
  }

  async function call(path) {
    // Relative to the page (as in the console), so the page also works behind a proxy under a sub-path.
    const response = await fetch(path.replace(/^\//, ""), { headers: { "X-API-Key": state.key } });
    if (!response.ok) {
      let text = `请求失败（${response.status}）`;
      try {
        const body = await response.json();
        if (body.error) text = body.error.message;
      } catch (ignored) { /* not JSON */ }
      throw new Error(text);
    }
    return response;
  }

  const statusName = (id) => (state.vocabulary && state.vocabulary.statuses[id]) || id;
  function queueName(id) {
    if (!state.vocabulary) return id;
    if (id === state.vocabulary.manual_triage.id) return state.vocabulary.manual_triage.name;
    const found = state.vocabulary.departments.find((item) => item.id === id);
    return found ? found.name : id;
  }

  async function load() {
    message("正在计算热点……");
    try {
      if (!state.vocabulary) state.vocabulary = await (await call("/console/taxonomy.json")).json();
      const days = $("days").value;
      state.answer = await (await call(`/v1/hotspots?days=${encodeURIComponent(days)}`)).json();
      message("");
      render();
    } catch (failure) {
      message(`无法获取热点：${failure.message}`);
    }
  }

  function render() {
    const answer = state.answer;
    $("hotspots-summary").textContent = `最近 ${answer.days} 天共 ${answer.petitions} 件，`
      + `${answer.clusters.length} 个热点，涉及 ${answer.clustered} 件。`;
    $("formula").textContent = `热度：${answer.formula}`;
    const top = answer.clusters.slice(0, CHART_SIZE);
    const hottest = top.length ? top[0].heat : 1;
    $("hotspots-chart").replaceChildren(...top.map((cluster) => {
      const button = el("button", { type: "button", class: "chart-row", "data-testid": "hotspot-bar" },
        el("span", { class: "chart-label", text: `${cluster.rank}. ${cluster.label}` }),
        el("span", { class: "chart-bar" }, el("span", { class: "chart-fill" })),
        el("span", { class: "chart-value", text: `热度 ${cluster.heat.toFixed(1)} · ${cluster.size} 件` }));
      button.querySelector(".chart-fill").style.width = `${Math.max(2, (100 * cluster.heat) / hottest)}%`;
      button.addEventListener("click", () => show(cluster));
      return el("li", {}, button);
    }));
    if (!top.length) $("hotspots-chart").replaceChildren(el("li", { text: "该时间范围内没有热点。" }));
    $("detail").hidden = true;
  }

  function show(cluster) {
    $("detail").hidden = false;
    $("detail-title").textContent = `${cluster.cluster} ${cluster.label}`;
    const mix = (items) => items.map((item) => `${item.name} ${item.count}`).join("、") || "—";
    const facts = [
      ["热度", cluster.heat.toFixed(2)],
      ["件数 / 信访人", `${cluster.size} 件 / ${cluster.petitioners} 人`],
      ["时间", `${fmtDate(cluster.first)} — ${fmtDate(cluster.last)}`],
      ["领域", mix(cluster.domains)],
      ["部门", mix(cluster.departments)],
      ["高频词", cluster.top_terms.join("、")],
    ];
    $("detail-facts").replaceChildren(...facts.flatMap(([name, value]) => [el("dt", { text: name }),
      el("dd", { text: value })]));
    $("detail-items").querySelector("tbody").replaceChildren(...cluster.items.map((item) => el("tr", {},
      el("td", { text: String(item.id) }), el("td", { text: fmtDate(item.received_at) }),
      el("td", { text: statusName(item.status) }), el("td", { text: queueName(item.queue) }),
      el("td", { text: item.preview }))));
    $("detail-title").focus();
  }

  async function exportXlsx() {
    try {
      const days = $("days").value;
      const blob = await (await call(`/v1/hotspots/export.xlsx?days=${encodeURIComponent(days)}`)).blob();
      const link = el("a", { href: URL.createObjectURL(blob), download: `热点-${days}天.xlsx` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (failure) {
      message(`导出失败：${failure.message}`);
    }
  }

  function init() {
    if (!state.key) {
      message("请先在登记台登录（API 密钥只保存在本标签页）。");
      return;
    }
    $("hotspots-form").addEventListener("submit", (event) => { event.preventDefault(); load(); });
    $("export-button").addEventListener("click", exportXlsx);
    load();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
