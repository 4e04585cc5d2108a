/* Clerk console for the petition triage API. Plain JavaScript, no dependencies.
 *
 * The API key lives in sessionStorage (this tab only) and travels in the X-API-Key header, never
 * in a URL. Text from the API is always inserted with textContent, never as HTML.
 */
"use strict";

(function () {
  const KEY_STORAGE = "triage.apiKey";
  const REQUEST_TIMEOUT_MS = 30000;
  const PAGE_SIZE = 20;
  const DEFAULT_CHANNEL = "web";
  const INTAKE_FIELDS = ["received-date", "headcount", "petitioner-name", "petitioner-contact", "address"];

  const { $, el } = window.TriagePage;  // common.js

  const state = {
    key: null,
    me: null,
    // The server's vocabulary (/console/taxonomy.json): taxonomy, labels of statuses, channels, roles and
    // history actions, the manual triage queue, the permission map and the text limit. No copies here.
    taxonomy: { domains: [], departments: [], statuses: {}, channels: {}, roles: {}, actions: {}, flags: {},
      manual_triage: { id: null, name: "" }, permissions: {}, max_text_chars: 0,
      deadlines: { hand_over_days: 0, handling_days: 0, max_extension_days: 0 } },
    draft: null,
    board: { queue: null, offset: 0, total: 0, status: "" },
    search: { params: null, offset: 0, total: 0 },
    item: null,
    showRaw: false,
  };

  // -- vocabulary and permissions (from the server) ---------------------------------------------

  const label = (kind, id) => (id && state.taxonomy[kind] && state.taxonomy[kind][id]) || id;
  const maxChars = () => state.taxonomy.max_text_chars;
  const manualTriage = () => state.taxonomy.manual_triage.id;
  /** Whether the signed-in role holds `permission` (the server's permission map, service/auth.py). */
  const can = (permission) => Boolean(state.me
    && (state.taxonomy.permissions[state.me.role] || []).includes(permission));
  const mayClaimFrom = (queue) => can("claim_any_queue")
    || (can("claim_own_queue") && queue === state.me.department)
    || (can("claim_manual_triage") && queue === manualTriage());

  // -- API ----------------------------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, body, network) {
      super("api failure");
      this.status = status;
      this.body = body;
      this.network = network || null;
      this.code = body && body.error ? body.error.code : null;
    }
  }

  async function api(method, path, body, headers) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    const init = { method, headers: { Accept: "application/json", ...(headers || {}) }, cache: "no-store",
      signal: controller.signal, credentials: "omit" };
    if (state.key) init.headers["X-API-Key"] = state.key;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      // Relative to the page, so the console also works behind a proxy under a sub-path (/triage/).
      response = await fetch(path.replace(/^\//, ""), init);
    } catch (error) {
      throw new ApiFailure(0, null, controller.signal.aborted ? "timeout" : "unreachable");
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (!response.ok) throw new ApiFailure(response.status, data);
    return data;
  }

  /** A Chinese sentence a clerk can act on, for any failure. */
  function describe(failure) {
    if (!(failure instanceof ApiFailure)) {
      return "页面出现意外错误，请刷新后重试。已填写的内容不会自动清除。";
    }
    if (failure.network === "timeout") return "服务器响应超时，请稍后重试。已填写的内容已保留。";
    if (failure.network) return "无法连接服务器，请检查服务是否运行、网络是否正常，稍后重试。已填写的内容已保留。";
    const error = failure.body && failure.body.error ? failure.body.error : null;
    const serverMessage = error && error.message ? error.message : "";
    switch (failure.code) {
      case "empty_text": return "信访内容不能为空，请先填写信访内容。";
      case "text_too_long": return `信访内容超过 ${maxChars()} 字，请删减或分件登记后再提交。`;
      case "body_too_large": return "提交的内容过大，请删减后再试。";
      case "unauthorized": return "API 密钥无效或已失效，请重新登录。";
      case "forbidden": {
        const role = state.me ? label("roles", state.me.role) : "";
        return `无权执行此操作${role ? `（当前角色：${role}）` : ""}：${serverMessage || "当前角色无权执行此操作"}。`;
      }
      default: break;
    }
    if (failure.status === 401) return "API 密钥无效或已失效，请重新登录。";
    if (failure.status === 403) return `无权执行此操作：${serverMessage || "当前角色无权执行此操作"}。`;
    if (failure.status >= 500) {
      return `服务器暂时无法处理（${failure.status}）${serverMessage ? `：${serverMessage}` : ""}，请稍后重试。`
        + "已填写的内容已保留。";
    }
    if (serverMessage) return serverMessage.endsWith("。") ? serverMessage : `${serverMessage}。`;
    return `请求失败（HTTP ${failure.status}），请稍后重试。`;
  }

  function showMessage(target, text, kind) {
    const node = $(target);
    node.classList.toggle("info", kind === "info");
    node.textContent = text || "";
  }

  /** Show a failure where it happened; a 401 also asks for the key again, keeping the page as it is. */
  function fail(target, failure, prefix) {
    showMessage(target, (prefix || "") + describe(failure));
    if (failure instanceof ApiFailure && failure.status === 401) {
      requireSignIn(`${describe(failure)}页面上已填写的内容已保留，重新登录后可继续。`);
    }
  }

  // -- formatting ---------------------------------------------------------------------------------

  const dateFormat = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric",
    month: "2-digit", day: "2-digit" });
  const timeFormat = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric",
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
  const fmtDate = (value) => (value ? dateFormat.format(new Date(value)) : "—");
  const fmtTime = (value) => (value ? timeFormat.format(new Date(value)) : "—");
  const pct = (value) => `${Math.round((value || 0) * 100)}%`;

  function dueText(dueAt, overdue) {
    const days = Math.ceil((new Date(dueAt).getTime() - Date.now()) / 86400000);
    if (overdue || days < 0) return `已超期 ${Math.max(1, -days)} 天`;
    if (days === 0) return "今日到期";
    return `剩余 ${days} 天`;
  }

  const domainName = (id) => {
    const found = state.taxonomy.domains.find((d) => d.id === id);
    return found ? found.name : id || "—";
  };
  const departmentName = (id) => {
    if (id === manualTriage()) return state.taxonomy.manual_triage.name;
    const found = state.taxonomy.departments.find((d) => d.id === id);
    return found ? found.name : id || "—";
  };

  /** The text with every explanation term marked; non-overlapping, longest term first. Masking
   * placeholders such as 【银行卡号】 are never marked inside. */
  function highlight(container, text, terms) {
    container.replaceChildren();
    const list = [...new Set((terms || []).filter((t) => t && t.length))].sort((a, b) => b.length - a.length);
    let plain = "";
    let index = 0;
    while (index < text.length) {
      if (text[index] === "【") {
        const end = text.indexOf("】", index);
        if (end > index) {
          plain += text.slice(index, end + 1);
          index = end + 1;
          continue;
        }
      }
      const hit = list.find((term) => text.startsWith(term, index));
      if (hit) {
        if (plain) container.append(plain);
        plain = "";
        container.append(el("mark", { text: hit }));
        index += hit.length;
      } else {
        plain += text[index];
        index += 1;
      }
    }
    if (plain) container.append(plain);
  }

  /** Which head the model is unsure about: 领域把握不足, 部门把握不足, or both. */
  function unsureHeads(prediction) {
    const heads = [];
    if (prediction.domain.needs_review) heads.push("领域");
    if (!prediction.department) heads.push("部门（模型无部门建议）");
    else if (prediction.department.needs_review) heads.push("部门");
    return heads.length ? `${heads.join("、")}把握不足` : "模型把握不足";
  }

  function bar(value) {
    const fill = el("span");
    fill.style.width = pct(value);
    return el("div", { class: "bar", "aria-hidden": "true" }, fill);
  }

  // -- sign in ------------------------------------------------------------------------------------

  function requireSignIn(message) {
    state.key = null;
    sessionStorage.removeItem(KEY_STORAGE);
    const dialog = $("item-dialog");
    if (dialog.open) dialog.close();
    $("main").hidden = true;
    $("user-box").hidden = true;
    $("sign-in").hidden = false;
    showMessage("sign-in-message", message || "");
    $("api-key").value = "";
    $("api-key").focus();
  }

  async function signIn(key, fromStorage) {
    state.key = key;
    $("sign-in-button").disabled = true;
    try {
      const me = await api("GET", "/console/me");
      const taxonomy = await api("GET", "/console/taxonomy.json");
      state.me = me;
      state.taxonomy = taxonomy;
      sessionStorage.setItem(KEY_STORAGE, key);
      showSignedIn();
    } catch (failure) {
      state.key = null;
      if (!fromStorage || failure.status === 401) sessionStorage.removeItem(KEY_STORAGE);
      $("sign-in").hidden = false;
      $("main").hidden = true;
      showMessage("sign-in-message", failure.status === 401 ? "API 密钥无效，请核对后重新输入。" : describe(failure));
      $("api-key").focus();
    } finally {
      $("sign-in-button").disabled = false;
    }
  }

  function showSignedIn() {
    const me = state.me;
    $("sign-in").hidden = true;
    $("api-key").value = "";
    showMessage("sign-in-message", "");
    $("user-box").hidden = false;
    $("user-name").textContent = me.name;
    $("user-role").textContent = `角色：${me.role_name || label("roles", me.role)}`;
    $("user-department").hidden = !me.department;
    $("user-department").textContent = me.department ? `部门：${me.department_name || me.department}` : "";
    const mayIntake = can("intake");
    $("hotspots-link").hidden = !can("read_hotspots");
    $("stats-button").hidden = !can("read_stats");
    const handles = can("handle") && !mayIntake;  // a department: its own work list, not intake
    const title = handles ? "承办工作台" : "登记台";
    $("view-title").textContent = title;
    document.title = `信访分流 · ${title}`;
    $("board-title").textContent = handles ? `${me.department_name || me.department} · 本部门信访件` : "队列看板";
    $("intake").hidden = !mayIntake;
    $("main").classList.toggle("board-only", !mayIntake);
    $("main").hidden = false;
    fillLabelSelects();
    fillChannelSelect();
    fillSearchSelects();
    const days = state.taxonomy.deadlines;
    $("deadline-hint").textContent = `点击队列名称查看其中的信访件（退回件在前，其余按期限由近到远）。转交期限：收件后 `
      + `${days.hand_over_days} 日内由责任部门受理；办理期限：受理后 ${days.handling_days} 日内办结，可延期一次（最多 `
      + `${days.max_extension_days} 日）。均按自然日计算。`;
    if (!state.draft) resetDraft(false);
    if (handles && me.department) loadQueue(me.department, 0, false);
    refreshBoard();
    if (mayIntake) $("petition-text").focus();
    else $("refresh-board").focus();
  }

  function signOut() {
    if (hasUnsavedText() && !window.confirm("当前信访件尚未提交，退出将清空已填写的内容。确定退出吗？")) return;
    state.me = null;
    state.draft = null;
    closeDialog();
    $("petition-text").value = "";
    requireSignIn("已退出登录。");
    showMessage("sign-in-message", "已退出登录。", "info");
  }

  // -- label lists --------------------------------------------------------------------------------

  function fillDomainSelect(select, selected) {
    select.replaceChildren(...state.taxonomy.domains.map((domain) =>
      el("option", { value: domain.id, text: domain.name, selected: domain.id === selected })));
  }

  /** Departments responsible for the domain first, then all others. */
  function fillDepartmentSelect(select, domainId, selected) {
    const domain = state.taxonomy.domains.find((d) => d.id === domainId);
    const preferred = domain ? domain.departments : [];
    const option = (dept) => el("option", { value: dept.id, text: dept.name, selected: dept.id === selected });
    const first = state.taxonomy.departments.filter((d) => preferred.includes(d.id))
      .sort((a, b) => preferred.indexOf(a.id) - preferred.indexOf(b.id));
    const rest = state.taxonomy.departments.filter((d) => !preferred.includes(d.id));
    const groups = [];
    if (first.length) groups.push(el("optgroup", { label: `${domain.name}领域常见部门` }, ...first.map(option)));
    if (rest.length) groups.push(el("optgroup", { label: first.length ? "其他部门" : "全部部门" }, ...rest.map(option)));
    select.replaceChildren(...groups);
    if (!selected || !select.value) select.selectedIndex = 0;
  }

  function fillChannelSelect() {
    const select = $("channel");
    const selected = select.value || DEFAULT_CHANNEL;
    select.replaceChildren(...Object.entries(state.taxonomy.channels).map(([id, name]) =>
      el("option", { value: id, text: name, selected: id === selected })));
  }

  function fillLabelSelects() {
    fillDomainSelect($("correct-domain"), null);
    fillDepartmentSelect($("correct-department"), $("correct-domain").value, null);
  }

  // -- intake -------------------------------------------------------------------------------------

  function newIdempotencyKey() {
    if (window.crypto && crypto.randomUUID) return `console-${crypto.randomUUID()}`;
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  }

  function resetDraft(focus) {
    state.draft = { idempotencyKey: newIdempotencyKey(), classification: null, classifiedText: null,
      submitted: null, done: false, busy: false };
    const text = $("petition-text");
    text.value = "";
    text.readOnly = false;
    $("channel").disabled = false;
    for (const id of INTAKE_FIELDS) {
      $(id).value = "";
      $(id).disabled = false;
    }
    $("correct-note").value = "";
    $("result").hidden = true;
    $("outcome").hidden = true;
    $("outcome").replaceChildren();
    showMessage("intake-message", "");
    updateCount();
    updateDecision();
    if (focus) text.focus();
  }

  function hasUnsavedText() {
    return Boolean(state.draft && !state.draft.submitted && $("petition-text").value.trim());
  }

  function nextPetition() {
    if ($("intake").hidden) return;
    if (state.draft && state.draft.submitted && !state.draft.done) {
      if (!window.confirm("本件已登记但分流尚未完成，确定转到下一件吗？")) return;
    } else if (hasUnsavedText() && !window.confirm("当前信访件尚未提交，确定清空并登记下一件吗？")) {
      return;
    }
    resetDraft(true);
  }

  function updateCount() {
    const length = $("petition-text").value.length;
    const count = $("text-count");
    count.textContent = `${length} / ${maxChars()} 字`;
    count.classList.toggle("over", length > maxChars());
  }

  function isStale() {
    const draft = state.draft;
    return Boolean(draft && draft.classification && draft.classifiedText !== $("petition-text").value);
  }

  function updateDecision() {
    const draft = state.draft;
    const stale = isStale();
    $("stale-note").hidden = !stale;
    $("result").classList.toggle("stale", stale);
    const ready = Boolean(draft && draft.classification && !stale && !draft.done && !draft.busy);
    const hasDepartment = Boolean(draft && draft.classification && draft.classification.department);
    $("accept-button").disabled = !ready || !hasDepartment;
    $("correct-button").disabled = !ready;
    $("classify-button").disabled = Boolean(draft && (draft.busy || draft.submitted));
  }

  async function classify() {
    const draft = state.draft;
    if ($("intake").hidden || !draft || draft.busy) return;
    if (draft.submitted) {
      showMessage("intake-message", "本件已登记；如需登记新的信访件，请按“下一件”（Alt+N）。", "info");
      return;
    }
    const text = $("petition-text").value;
    draft.busy = true;
    updateDecision();
    showMessage("intake-message", "正在分类……", "info");
    try {
      const body = { text };
      const contact = $("petitioner-contact").value.trim();
      if (contact) body.petitioner_contact = contact;
      const result = await api("POST", "/v1/classify", body);
      draft.classification = result;
      draft.classifiedText = text;
      showMessage("intake-message", "");
      renderClassification(result);
    } catch (failure) {
      fail("intake-message", failure, "分类失败：");
    } finally {
      draft.busy = false;
      updateDecision();
    }
  }

  function renderClassification(result) {
    $("result").hidden = false;
    $("outcome").hidden = true;
    $("domain-name").textContent = result.domain.name;
    $("domain-confidence").textContent = `置信度 ${pct(result.domain.confidence)}`;
    $("domain-bar").style.width = pct(result.domain.confidence);
    const review = $("review-state");
    const department = result.department;
    if (result.needs_review) {
      review.className = "review needs";
      review.textContent = `需人工复核：${unsureHeads(result)}，提交后默认进入人工分流队列`;
    } else {
      review.className = "review fine";
      review.textContent = `可自动分流：提交后进入“${departmentName(result.suggested_queue)}”队列`;
    }
    const list = $("departments");
    if (department) {
      list.replaceChildren(...department.ranking.map((item, position) => el("li", {},
        el("div", { class: "name" }, el("span", { text: `${position + 1}. ${item.name}` }),
          el("span", { class: "pct", text: pct(item.confidence) })),
        bar(item.confidence))));
    } else {
      list.replaceChildren(el("li", { text: "当前模型不提供部门建议，请在右侧选择责任部门。" }));
    }
    highlight($("highlighted"), result.masked_text, result.explanation.map((term) => term.term));
    $("model-version").textContent = result.model_version;
    const hint = $("accept-hint");
    if (!department) hint.textContent = "无部门建议，请使用“更正分流”选择部门。";
    else if (result.needs_review) hint.textContent = `由您确认后分流至“${department.name}”。`;
    else hint.textContent = `提交后进入“${department.name}”队列。`;
    fillDomainSelect($("correct-domain"), result.domain.label);
    fillDepartmentSelect($("correct-department"), result.domain.label, department ? department.label : null);
    renderFlags($("flags"), result.flags);
    renderSimilar($("similar-box"), $("similar-list"), result.similar, result.repeat_of);
    const note = $("repeat-note");
    note.hidden = !result.repeat_of;
    note.textContent = result.repeat_of
      ? `疑似重复信访：同一信访人已就同一事项反映过（第 ${result.repeat_of} 号），请考虑关联到原件办理。` : "";
    $("result").scrollIntoView({ block: "nearest" });
  }

  /** A flag's badge (涉法涉诉, 集体访): the label from the server's vocabulary. */
  function flagBadge(id) {
    const flag = state.taxonomy.flags[id];
    return el("span", { class: "badge badge-flag", text: flag ? flag.label : id, "data-flag": id });
  }

  /** The raised flags as badges, each with its hint (涉法涉诉: guide to legal channels, 诉访分离). */
  function renderFlags(box, flags) {
    const raised = flags || [];
    box.hidden = raised.length === 0;
    box.replaceChildren(...raised.map((flag) => flagBadge(flag.flag)),
      ...raised.filter((flag) => flag.hint).map((flag) => el("p", { class: "flag-hint", text: flag.hint })));
  }

  /** "可能重复": earlier petitions about the same matter, each a link that opens it; optionally a link button. */
  function renderSimilar(box, list, similar, repeatOf, linkTo) {
    const items = similar || [];
    box.hidden = items.length === 0;
    list.replaceChildren(...items.map((item) => {
      const open = el("a", { href: `#petition-${item.id}`, text: `第 ${item.id} 号`, "data-testid": "similar-link" });
      open.addEventListener("click", (event) => { event.preventDefault(); openItem(item.id); });
      const same = item.same_petitioner || item.id === repeatOf;
      const link = linkTo ? el("button", { type: "button", class: "btn btn-plain", text: "关联到此件" }) : null;
      if (link) link.addEventListener("click", () => linkTo(item.id));
      return el("li", {}, open,
        ` · 相似度 ${pct(item.score)} · ${label("statuses", item.status)} · ${departmentName(item.queue)} · `
        + `${fmtDate(item.received_at)}`,
        same ? el("span", { class: "badge badge-warn", text: "同一信访人" }) : null, link);
    }));
  }

  async function linkItem(caseId) {
    const petition = state.item;
    if (!petition) return;
    try {
      const updated = await api("POST", `/v1/petitions/${petition.id}/link`, { case_id: caseId });
      showItem(updated);
      showMessage("item-message", `已关联到第 ${caseId} 号案件，两件的处理记录均已记载。`, "info");
    } catch (failure) {
      fail("item-message", failure, "关联失败：");
    }
  }

  /** Submit once (idempotent), then route if asked; a failure keeps everything for a retry. */
  async function decide(route, kind) {
    const draft = state.draft;
    if (!draft || !draft.classification || draft.busy || draft.done || isStale() || $("intake").hidden) return;
    draft.busy = true;
    updateDecision();
    showMessage("intake-message", draft.submitted ? "正在分流……" : "正在提交……", "info");
    try {
      if (!draft.submitted) {
        const body = { text: draft.classifiedText, channel: $("channel").value, ...intakeFacts() };
        draft.submitted = await api("POST", "/v1/petitions", body, { "Idempotency-Key": draft.idempotencyKey });
        $("petition-text").readOnly = true;
        $("channel").disabled = true;
        for (const id of INTAKE_FIELDS) $(id).disabled = true;
      }
      let routed = null;
      if (route) routed = await api("POST", `/v1/petitions/${draft.submitted.id}/route`, route);
      draft.done = true;
      showMessage("intake-message", "");
      renderOutcome(draft.submitted, routed, kind);
      $("outcome").scrollIntoView({ block: "nearest" });
      refreshBoard();
    } catch (failure) {
      const prefix = draft.submitted
        ? `已登记为第 ${draft.submitted.id} 号，但分流未完成：`
        : "提交失败：";
      fail("intake-message", failure, prefix);
      if (draft.submitted) refreshBoard();
    } finally {
      draft.busy = false;
      updateDecision();
    }
  }

  /** The intake form's optional facts; the petitioner's name and contact go to the API only, never to logs. */
  function intakeFacts() {
    const facts = {};
    const received = $("received-date").value;
    if (received) facts.received_at = `${received}T00:00:00+08:00`;
    const headcount = Number.parseInt($("headcount").value, 10);
    if (Number.isFinite(headcount)) facts.headcount = headcount;
    const text = { petitioner_name: "petitioner-name", petitioner_contact: "petitioner-contact", address: "address" };
    for (const [field, id] of Object.entries(text)) {
      const value = $(id).value.trim();
      if (value) facts[field] = value;
    }
    return facts;
  }

  function accept() {
    const draft = state.draft;
    if (!draft || !draft.classification) return;
    const result = draft.classification;
    if (!result.department) {
      showMessage("intake-message", "当前模型不提供部门建议，请使用“更正分流”选择责任部门。");
      return;
    }
    // Accepting is the clerk's confirmation of the route: recorded as 确认分流 (status 已分流) in the
    // history, whether the model was sure (already in the queue) or not (it would wait in manual triage).
    const route = { department: result.department.label, domain: result.domain.label, note: "登记员确认模型建议" };
    decide(route, "accept");
  }

  function correct(event) {
    if (event) event.preventDefault();
    const note = $("correct-note").value.trim();
    const route = { department: $("correct-department").value, domain: $("correct-domain").value };
    if (note) route.note = note;
    decide(route, "correct");
  }

  function renderOutcome(submitted, routed, kind) {
    const queue = routed ? routed.queue : submitted.queue;
    const queueLabel = routed ? routed.queue_name : departmentName(queue);
    const dueAt = routed ? routed.due_at : submitted.due_at;
    const status = routed ? routed.status : submitted.status;
    const corrected = routed && routed.history.some((h) => h.action === "corrected");
    const verb = kind === "correct" ? (corrected ? "已按更正分流" : "已分流") : "已接受建议";
    const box = $("outcome");
    box.replaceChildren(...[
      el("p", {}, `${verb}：`, el("strong", { text: `第 ${submitted.id} 号`, "data-testid": "petition-id" }),
        `${submitted.created ? "" : "（重复提交，返回原件）"}`),
      el("p", { text: `队列：${queueLabel} · 状态：${label("statuses", status)}` }),
      el("p", { text: `转交期限：${fmtDate(dueAt)}（收件后 ${state.taxonomy.deadlines.hand_over_days} 日内由部门受理，`
        + `${dueText(dueAt, false)}）` }),
      corrected ? el("p", { text: "更正已记录为模型反馈。" }) : null,
      el("p", { class: "hint", text: "按 Alt+N 登记下一件。" }),
    ].filter(Boolean));
    box.hidden = false;
  }

  // -- queue board --------------------------------------------------------------------------------

  async function refreshBoard() {
    if (!state.key) return;
    try {
      const data = await api("GET", "/v1/queues");
      renderQueues(data.queues);
      if (state.board.queue) await loadQueue(state.board.queue, state.board.offset, false);
      if ($("board-message").classList.contains("stale-error")) showMessage("board-message", "");
    } catch (failure) {
      fail("board-message", failure, "队列看板刷新失败：");
      $("board-message").classList.add("stale-error");
    }
  }

  function renderQueues(queues) {
    const body = $("queues-table").tBodies[0];
    const visible = queues.filter((q) => q.open > 0 || q.queue === manualTriage() || !can("read_all_queues"));
    const rows = visible.map((q) => {
      const open = el("button", { type: "button", class: "link", text: q.name,
        "aria-label": `打开队列 ${q.name}` });
      open.addEventListener("click", () => loadQueue(q.queue, 0, true));
      return el("tr", { "data-queue": q.queue },
        el("th", { scope: "row" }, open),
        el("td", { text: String(q.queued), "data-col": "queued" }),
        el("td", { text: String(q.routed), "data-col": "routed" }),
        el("td", { text: String(q.claimed), "data-col": "claimed" }),
        el("td", { text: String(q.accepted), "data-col": "accepted" }),
        el("td", { text: String(q.returned), "data-col": "returned", class: q.returned ? "count-returned" : "" }),
        el("td", { text: String(q.hand_over_overdue), "data-col": "hand_over_overdue",
          class: q.hand_over_overdue ? "count-overdue" : "" }),
        el("td", { text: String(q.handling_overdue), "data-col": "handling_overdue",
          class: q.handling_overdue ? "count-overdue" : "" }),
        el("td", { text: String(q.litigation || 0), "data-col": "litigation" }),
        el("td", { text: String(q.collective || 0), "data-col": "collective" }));
    });
    const hidden = queues.length - visible.length;
    if (hidden > 0) {
      rows.push(el("tr", { class: "empty-row" }, el("td", { colSpan: 10,
        text: `另有 ${hidden} 个队列暂无待办件。` })));
    }
    body.replaceChildren(...rows);
  }

  async function loadQueue(queue, offset, focus) {
    try {
      const status = state.board.queue === queue ? state.board.status : "";
      const filter = status ? `&status=${encodeURIComponent(status)}` : "";
      const page = await api("GET",
        `/v1/queues/${encodeURIComponent(queue)}?limit=${PAGE_SIZE}&offset=${offset}${filter}`);
      state.board = { queue, offset, total: page.total, status };
      if (focus) showMessage("board-message", "");
      renderQueue(page);
      showBoardView("queue-view");
      if (focus) $("queue-title").focus();
    } catch (failure) {
      fail("board-message", failure, "无法打开队列：");
    }
  }

  /** Status tabs of a queue: a department's 待受理 / 承办中 split, manual triage's 已退回. */
  function renderStatusTabs(queue) {
    const tabs = [["", "全部"], ["routed", label("statuses", "routed")], ["queued", label("statuses", "queued")],
      ["accepted", label("statuses", "accepted")]];
    if (queue === manualTriage()) tabs.splice(3, 1, ["returned", label("statuses", "returned")]);
    $("status-tabs").replaceChildren(...tabs.map(([status, name]) => {
      const button = el("button", { type: "button", class: `btn btn-tab${state.board.status === status ? " active" : ""}`,
        text: name, "aria-pressed": String(state.board.status === status), "data-status": status });
      button.addEventListener("click", () => {
        state.board.status = status;
        loadQueue(queue, 0, false);
      });
      return button;
    }));
  }

  /** The deadline that matters now: handling once accepted, else hand-over. */
  function dueCell(item) {
    const handling = Boolean(item.handling_due_at);
    const dueAt = handling ? item.handling_due_at : item.due_at;
    const late = handling ? item.handling_overdue : item.hand_over_overdue;
    const clock = handling ? "办理" : "转交";
    return el("td", { class: "due" }, `${clock} ${fmtDate(dueAt)}`,
      late ? el("small", { class: "overdue-flag", text: `⚠ ${clock}${dueText(dueAt, true)}` })
        : el("small", { text: dueText(dueAt, false) }));
  }

  function itemRows(items, columns, emptyText) {
    if (!items.length) {
      return [el("tr", { class: "empty-row" }, el("td", { colSpan: columns, text: emptyText }))];
    }
    return items.map((item) => {
      const open = el("button", { type: "button", class: "link", text: `#${item.id}`,
        "aria-label": `查看第 ${item.id} 号信访件` });
      open.addEventListener("click", () => openItem(item.id));
      const classes = [item.overdue ? "overdue" : "", item.status === "returned" ? "returned" : ""].join(" ").trim();
      const preview = el("td", { class: "preview" }, ...(item.flags || []).map(flagBadge), item.preview);
      const cells = [el("td", {}, open), preview, dueCell(item),
        el("td", { class: "status", text: label("statuses", item.status) })];
      if (columns > 4) cells.push(el("td", { text: departmentName(item.queue) }));
      return el("tr", { class: classes, "data-id": String(item.id) }, ...cells);
    });
  }

  function renderQueue(page) {
    $("queue-title").textContent = `${page.name}（共 ${page.total} 件）`;
    // Departments accept items into their work list; the lease-based claim is for worker systems and clerks.
    $("claim-button").hidden = !mayClaimFrom(page.queue) || (can("handle") && !can("intake"));
    renderStatusTabs(page.queue);
    $("items-table").tBodies[0].replaceChildren(...itemRows(page.items, 4, "队列中暂无信访件。"));
    const { offset, total } = state.board;
    $("page-info").textContent = total ? `第 ${offset + 1}–${Math.min(offset + PAGE_SIZE, total)} 件` : "";
    $("prev-page").disabled = offset <= 0;
    $("next-page").disabled = offset + PAGE_SIZE >= total;
  }

  async function claimNext() {
    const queue = state.board.queue;
    if (!queue) return;
    try {
      const petition = await api("POST", `/v1/queues/${encodeURIComponent(queue)}/claim`, {});
      if (!petition) {
        showMessage("board-message", "队列中暂无可领取的信访件。", "info");
        return;
      }
      showMessage("board-message", `已领取第 ${petition.id} 号信访件。`, "info");
      await refreshBoard();
      showItem(petition);
    } catch (failure) {
      fail("board-message", failure, "领取失败：");
    }
  }

  // -- one petition -------------------------------------------------------------------------------

  async function openItem(id) {
    showMessage("board-message", "");
    try {
      const petition = await api("GET", `/v1/petitions/${id}`);
      showItem(petition);
    } catch (failure) {
      const prefix = failure.status === 404 || failure.status === 403 ? "" : `无法查看第 ${id} 号信访件：`;
      fail("board-message", failure, prefix);
    }
  }

  function showItem(petition) {
    state.item = petition;
    state.showRaw = false;
    showMessage("item-message", "");
    $("item-title").textContent = `第 ${petition.id} 号信访件`;
    const prediction = petition.prediction;
    renderFlags($("item-flags"), prediction.flags);
    const facts = [
      ["状态", label("statuses", petition.status)],
      ["所在队列", petition.queue_name],
      ["来源渠道", label("channels", petition.channel)],
      ["收件时间", fmtTime(petition.received_at)],
      ["转交期限", `${fmtDate(petition.due_at)}（${petition.accepted_at ? `已于 ${fmtDate(petition.accepted_at)} 受理`
        : dueText(petition.due_at, petition.hand_over_overdue)}）`],
      ["办理期限", petition.handling_due_at ? `${fmtDate(petition.handling_due_at)}（${petition.status === "closed"
        ? label("statuses", "closed") : dueText(petition.handling_due_at, petition.handling_overdue)}）`
        : `受理后 ${state.taxonomy.deadlines.handling_days} 日`],
      ["模型建议", `${prediction.domain.name} ${pct(prediction.domain.confidence)}`
        + (prediction.department ? ` · ${prediction.department.name} ${pct(prediction.department.confidence)}` : "")
        + (prediction.needs_review ? `（需人工复核：${unsureHeads(prediction)}）` : "")],
      ["当前分流", petition.route.department
        ? `${domainName(petition.route.domain)} · ${departmentName(petition.route.department)}` : "尚未确认"],
    ];
    if (petition.assignee) facts.push(["承办人", petition.assignee]);
    if (petition.extension) {
      facts.push(["延期", `${petition.extension.days} 日：${petition.extension.reason || ""}`]);
    }
    if (petition.lease) facts.push(["领取人", `${petition.lease.owner}（至 ${fmtTime(petition.lease.expires_at)}）`]);
    const who = petition.petitioner;
    if (who && (who.name || who.contact || who.headcount || who.address)) {
      const parts = [who.name, who.contact, who.headcount ? `${who.headcount} 人${who.headcount >= 5 ? "（集体访）" : ""}` : null,
        who.address].filter(Boolean);
      facts.push(["信访人", `${parts.join(" · ")}${who.masked ? "（转交前脱敏显示）" : ""}`]);
    }
    if (petition.resolution) facts.push(["办理结果", petition.resolution]);
    if (petition.repeat_of) facts.push(["疑似重复", `同一信访人同一事项：第 ${petition.repeat_of} 号`]);
    if (petition.linked_case) facts.push(["已关联案件", `第 ${petition.linked_case} 号`]);
    if (petition.reply_summary) facts.push(["答复摘要", petition.reply_summary]);
    const late = { 转交期限: petition.hand_over_overdue, 办理期限: petition.handling_overdue };
    const list = $("item-facts");
    list.replaceChildren(...facts.flatMap(([name, value]) => [el("dt", { text: name }),
      el("dd", { text: value, class: late[name] ? "overdue-flag" : "" })]));
    renderItemText();
    $("toggle-raw").hidden = !petition.text_visible;
    $("item-history").replaceChildren(...petition.history.map((entry) => {
      const move = entry.from_queue !== entry.to_queue && entry.to_queue
        ? `：${entry.from_queue ? `${departmentName(entry.from_queue)} → ` : ""}${departmentName(entry.to_queue)}` : "";
      const noteName = { returned: "退回理由", extended: "延期理由" }[entry.action] || "备注";
      return el("li", { "data-action": entry.action }, el("span", { class: "when", text: fmtTime(entry.at) }),
        `${label("actions", entry.action)}${move} · ${entry.actor}（${label("roles", entry.role)}）`,
        entry.note ? el("span", { class: "note", text: `${noteName}：${entry.note}` }) : null);
    }));
    renderWorkPanel(petition);
    const mayRoute = can("route");
    renderSimilar($("item-similar-box"), $("item-similar"), petition.similar, petition.repeat_of,
      mayRoute ? linkItem : null);
    $("reroute-form").hidden = !mayRoute || ["closed", "accepted"].includes(petition.status);
    const domain = petition.route.domain || prediction.domain.label;
    fillDomainSelect($("reroute-domain"), domain);
    fillDepartmentSelect($("reroute-department"), domain,
      petition.route.department || (prediction.department ? prediction.department.label : null));
    $("reroute-note").value = "";
    const dialog = $("item-dialog");
    if (!dialog.open) dialog.showModal();
  }

  /** The department's steps, shown by permission (server map) and status (the server still checks both). */
  function renderWorkPanel(petition) {
    const open = petition.status !== "closed";
    const inDepartment = petition.queue !== manualTriage();
    const handle = can("handle") && open && inDepartment;
    const accepted = petition.status === "accepted";
    const confirmed = Boolean(petition.route.routed_at);  // the server's handed_to: a clerk confirmed the route
    $("accept-item").hidden = !handle || accepted || !confirmed;
    $("await-handover").hidden = !handle || accepted || confirmed;
    $("extend-form").hidden = !handle || !accepted || Boolean(petition.extension);
    $("return-form").hidden = !handle;
    $("note-form").hidden = !can("note") || !open;
    $("close-form").hidden = !can("close") || !open || (can("handle") && !accepted);
    $("work-panel").hidden = [$("accept-item"), $("extend-form"), $("return-form"), $("note-form"), $("close-form")]
      .every((node) => node.hidden);
    for (const id of ["note-text", "extend-days", "extend-reason", "return-reason", "close-resolution", "close-reply"]) {
      $(id).value = "";
    }
    $("extend-days").max = String(state.taxonomy.deadlines.max_extension_days);
  }

  /** One workflow step on the open item; the answer replaces the item, the board refreshes. */
  async function step(path, body, button, done) {
    const petition = state.item;
    if (!petition) return;
    $(button).disabled = true;
    try {
      const updated = await api("POST", `/v1/petitions/${petition.id}/${path}`, body);
      if (updated.queue !== petition.queue && !can("read_all_queues")) {
        closeDialog();
        showMessage("board-message", done(updated), "info");
      } else {
        showItem(updated);
        showMessage("item-message", done(updated), "info");
      }
      refreshBoard();
    } catch (failure) {
      fail("item-message", failure, "操作失败：");
    } finally {
      $(button).disabled = false;
    }
  }

  function required(id, what) {
    const value = $(id).value.trim();
    if (!value) {
      showMessage("item-message", `请填写${what}。`);
      $(id).focus();
    }
    return value;
  }

  function renderItemText() {
    const petition = state.item;
    const node = $("item-text");
    if (state.showRaw && petition.text_visible) {
      node.textContent = petition.text;
      $("toggle-raw").textContent = "显示脱敏文本";
    } else {
      highlight(node, petition.masked_text, petition.prediction.explanation.map((term) => term.term));
      $("toggle-raw").textContent = "显示原文";
    }
  }

  async function reroute(event) {
    event.preventDefault();
    const petition = state.item;
    if (!petition) return;
    const body = { department: $("reroute-department").value, domain: $("reroute-domain").value };
    const note = $("reroute-note").value.trim();
    if (note) body.note = note;
    $("reroute-button").disabled = true;
    try {
      const updated = await api("POST", `/v1/petitions/${petition.id}/route`, body);
      showItem(updated);
      showMessage("item-message", `已分流至“${updated.queue_name}”。`, "info");
      refreshBoard();
    } catch (failure) {
      fail("item-message", failure, "分流失败：");
    } finally {
      $("reroute-button").disabled = false;
    }
  }

  function closeDialog() {
    const dialog = $("item-dialog");
    if (dialog.open) dialog.close();
    state.item = null;
  }

  // -- search, filters, export, print ------------------------------------------------------------

  function fillSearchSelects() {
    const option = (value, text) => el("option", { value, text });
    $("filter-status").replaceChildren(option("", "全部未办结"),
      ...Object.entries(state.taxonomy.statuses).map(([id, name]) => option(id, name)));
    const queues = can("read_all_queues")
      ? [...state.taxonomy.departments, state.taxonomy.manual_triage]
      : state.taxonomy.departments.filter((d) => d.id === state.me.department);
    $("filter-queue").replaceChildren(option("", can("read_all_queues") ? "全部队列" : "本部门"),
      ...queues.map((queue) => option(queue.id, queue.name)));
    $("filter-channel").replaceChildren(option("", "全部"),
      ...Object.entries(state.taxonomy.channels).map(([id, name]) => option(id, name)));
    $("filter-flag").replaceChildren(option("", "全部"),
      ...Object.entries(state.taxonomy.flags).map(([id, flag]) => option(id, flag.label)));
  }

  /** The search form as query parameters (only the filled ones). */
  function searchParams() {
    const params = new URLSearchParams();
    const fields = { q: "search-q", status: "filter-status", queue: "filter-queue", channel: "filter-channel",
      overdue: "filter-overdue", flag: "filter-flag", received_from: "filter-from", received_to: "filter-to", sort: "filter-sort" };
    for (const [name, id] of Object.entries(fields)) {
      const value = $(id).value.trim();
      if (value) params.set(name, value);
    }
    return params;
  }

  /**
   * Requests of one kind where only the latest answer may be shown: a control changed twice in quick
   * succession starts two requests, and the earlier one answering last would show what the clerk
   * already changed. `begin()` before the request; `isLatest(ticket)` when its answer arrives.
   */
  function latestOnly() {
    let last = 0;
    return { begin: () => ++last, isLatest: (ticket) => ticket === last };
  }
  const searches = latestOnly();
  const statsLoads = latestOnly();

  async function runSearch(offset) {
    const params = state.search.params;
    if (!params) return;
    const query = new URLSearchParams(params);
    query.set("limit", String(PAGE_SIZE));
    query.set("offset", String(offset));
    const ticket = searches.begin();
    try {
      const page = await api("GET", `/v1/petitions?${query}`);
      if (!searches.isLatest(ticket)) return;
      state.search.offset = offset;
      state.search.total = page.total;
      $("results-title").textContent = `查找结果（共 ${page.total} 件）`;
      $("results-table").tBodies[0].replaceChildren(...itemRows(page.items, 5, "没有符合条件的信访件。"));
      $("results-info").textContent = page.total
        ? `第 ${offset + 1}–${Math.min(offset + PAGE_SIZE, page.total)} 件` : "";
      $("results-prev").disabled = offset <= 0;
      $("results-next").disabled = offset + PAGE_SIZE >= page.total;
      showBoardView("results-view");
      showMessage("board-message", "");
    } catch (failure) {
      if (searches.isLatest(ticket)) fail("board-message", failure, "查找失败：");
    }
  }

  function search(event) {
    if (event) event.preventDefault();
    const from = $("filter-from").value;
    const to = $("filter-to").value;
    if (from && to && from > to) {
      showMessage("board-message", "收件日期范围有误：起始日期晚于截止日期。");
      return;
    }
    state.search.params = searchParams();
    runSearch(0);
  }

  /** Download the current list as .xlsx: fetched with the key header, handed to the browser as a file. */
  async function exportList() {
    const params = state.search.params || searchParams();
    $("export-button").disabled = true;
    try {
      const response = await fetch(`/v1/petitions/export.xlsx?${params}`, {
        headers: { "X-API-Key": state.key }, cache: "no-store", credentials: "omit" });
      if (!response.ok) {
        let body = null;
        try { body = await response.json(); } catch (error) { body = null; }
        throw new ApiFailure(response.status, body);
      }
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: `信访件-${new Date().toISOString().slice(0, 10)}.xlsx` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
      showMessage("board-message", "已导出当前列表。", "info");
    } catch (failure) {
      fail("board-message", failure instanceof ApiFailure ? failure : new ApiFailure(0, null, "unreachable"),
        "导出失败：");
    } finally {
      $("export-button").disabled = false;
    }
  }

  /** Show one of the board's views (queue counts, one queue, search results, acceptance statistics). */
  function showBoardView(id) {
    for (const view of ["queues-view", "queue-view", "results-view", "stats-view"]) $(view).hidden = view !== id;
  }

  function backToBoard() {
    state.board = { queue: null, offset: 0, total: 0, status: "" };
    showBoardView("queues-view");
    refreshBoard();
  }

  // -- acceptance statistics (GET /v1/stats) -----------------------------------------------------------

  const DECISIONS = ["accepted", "corrected", "rerouted"];

  /** Per week: the decisions on suggestions as one stacked bar, and the share that needed review. Labels
   * come from the answer's `measures` (the server's), so the page keeps no copies of them. */
  async function loadStats(focus) {
    const ticket = statsLoads.begin();
    try {
      const weeks = $("stats-weeks").value;
      const answer = await api("GET", `/v1/stats?weeks=${encodeURIComponent(weeks)}`);
      if (!statsLoads.isLatest(ticket)) return;
      renderStats(answer);
      showBoardView("stats-view");
      showMessage("board-message", "");
      if (focus) $("stats-title").focus();
    } catch (failure) {
      if (statsLoads.isLatest(ticket)) fail("board-message", failure, "无法获取采纳统计：");
    }
  }

  function renderStats(answer) {
    const name = Object.fromEntries(answer.measures.map((measure) => [measure.id, measure.name]));
    const share = (value) => (value === null ? "—" : pct(value));
    const total = answer.counts;
    $("stats-summary").textContent = `最近 ${answer.weeks} 周登记 ${total.suggested} 件，`
      + `${name.needs_review_share} ${share(total.needs_review_share)}；${name.accepted} ${total.accepted}、`
      + `${name.corrected} ${total.corrected}、${name.rerouted} ${total.rerouted}`
      + `（${name.rerouted_auto} ${total.rerouted_auto}），${name.accepted_share} ${share(total.accepted_share)}。`;
    $("stats-legend").replaceChildren(...DECISIONS.map((id) =>
      el("span", {}, el("span", { class: `chart-fill fill-${id}` }), name[id])));
    const most = Math.max(1, ...answer.by_week.map((week) => DECISIONS.reduce((sum, id) => sum + week.counts[id], 0)));
    $("stats-chart").replaceChildren(...answer.by_week.slice().reverse().map((week) => {
      const counts = week.counts;
      const fills = DECISIONS.map((id) => {
        const fill = el("span", { class: `chart-fill fill-${id}`, title: `${name[id]} ${counts[id]}` });
        fill.style.width = `${(100 * counts[id]) / most}%`;
        return fill;
      });
      const value = `${DECISIONS.map((id) => `${name[id]} ${counts[id]}`).join(" · ")} · `
        + `${name.needs_review} ${share(counts.needs_review_share)}`;
      const span = `${week.week}：${fmtDate(week.start)}–${fmtDate(week.end)}`;
      return el("li", { class: "chart-row chart-static chart-week", "data-testid": "stats-week",
        "data-week": week.week },
        el("span", { class: "chart-label", text: `${fmtDate(week.start)} 起`, title: span }),
        el("span", { class: "chart-bar stacked" }, ...fills),
        el("span", { class: "chart-value", text: value }));
    }));
    const columns = ["suggested", "needs_review_share", "accepted", "corrected", "rerouted", "rerouted_auto",
      "accepted_share"];
    const table = $("stats-departments");
    table.tHead.rows[0].replaceChildren(el("th", { scope: "col", text: "建议部门" }),
      ...columns.map((id) => el("th", { scope: "col", text: name[id] })));
    const cell = (counts, id) => (id.endsWith("_share") ? share(counts[id]) : String(counts[id]));
    table.tBodies[0].replaceChildren(...(answer.by_department.length ? answer.by_department.map((row) =>
      el("tr", { "data-department": row.department || "" }, el("th", { scope: "row", text: row.name }),
        ...columns.map((id) => el("td", { text: cell(row.counts, id), "data-col": id }))))
      : [el("tr", { class: "empty-row" }, el("td", { colSpan: columns.length + 1, text: "该时间范围内没有建议。" }))]));
    $("stats-corrections").replaceChildren(...(answer.top_corrections.length
      ? answer.top_corrections.map((item) => el("li", { text: `${item.from_name} → ${item.to_name}：${item.count} 件` }))
      : [el("li", { text: "该时间范围内没有更正。" })]));
  }

  // -- wiring -------------------------------------------------------------------------------------

  function onKey(event) {
    if ($("main").hidden) return;
    const dialogOpen = $("item-dialog").open;
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && !dialogOpen) {
      event.preventDefault();
      classify();
      return;
    }
    if (!event.altKey || event.ctrlKey || event.metaKey || dialogOpen) return;
    if (event.code === "KeyA") {
      event.preventDefault();
      if (!$("accept-button").disabled) accept();
    } else if (event.code === "KeyC") {
      event.preventDefault();
      if (!$("result").hidden) $("correct-domain").focus();
    } else if (event.code === "KeyN") {
      event.preventDefault();
      nextPetition();
    }
  }

  function init() {
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (!key) {
        showMessage("sign-in-message", "请输入 API 密钥。");
        return;
      }
      signIn(key, false);
    });
    $("sign-out").addEventListener("click", signOut);
    $("intake-form").addEventListener("submit", (event) => {
      event.preventDefault();
      classify();
    });
    $("petition-text").addEventListener("input", () => {
      updateCount();
      if (state.draft && !state.draft.submitted) state.draft.idempotencyKey = newIdempotencyKey();
      updateDecision();
    });
    $("next-button").addEventListener("click", nextPetition);
    $("accept-button").addEventListener("click", accept);
    $("correct-form").addEventListener("submit", correct);
    $("correct-domain").addEventListener("change", () =>
      fillDepartmentSelect($("correct-department"), $("correct-domain").value, $("correct-department").value));
    $("refresh-board").addEventListener("click", refreshBoard);
    $("search-form").addEventListener("submit", search);
    $("search-reset").addEventListener("click", () => {
      $("search-form").reset();
      state.search.params = null;
      backToBoard();
    });
    for (const id of ["filter-status", "filter-queue", "filter-channel", "filter-overdue", "filter-flag", "filter-sort"]) {
      $(id).addEventListener("change", () => search());
    }
    $("results-prev").addEventListener("click", () => runSearch(Math.max(0, state.search.offset - PAGE_SIZE)));
    $("results-next").addEventListener("click", () => runSearch(state.search.offset + PAGE_SIZE));
    $("back-from-results").addEventListener("click", backToBoard);
    $("export-button").addEventListener("click", exportList);
    $("print-button").addEventListener("click", () => window.print());
    $("back-to-queues").addEventListener("click", backToBoard);
    $("stats-button").addEventListener("click", () => loadStats(true));
    $("stats-weeks").addEventListener("change", () => loadStats(false));
    $("back-from-stats").addEventListener("click", backToBoard);
    $("accept-item").addEventListener("click", () => step("accept", {}, "accept-item",
      (p) => `已受理，办理期限至 ${fmtDate(p.handling_due_at)}。`));
    $("note-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const note = required("note-text", "备注");
      if (note) step("notes", { note }, "note-button", () => "已添加备注。");
    });
    $("extend-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const days = Number.parseInt($("extend-days").value, 10);
      if (!Number.isFinite(days) || days < 1) {
        showMessage("item-message", "请填写延期天数（正整数）。");
        $("extend-days").focus();
        return;
      }
      const reason = required("extend-reason", "延期理由");
      if (reason) step("extend", { days, reason }, "extend-button", (p) => `已延期，办理期限至 ${fmtDate(p.handling_due_at)}。`);
    });
    $("return-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const reason = required("return-reason", "退回理由");
      if (reason) step("return", { reason }, "return-button", (p) => `第 ${p.id} 号已退回人工分流。`);
    });
    $("close-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const resolution = required("close-resolution", "办理结果");
      if (!resolution) return;
      const body = { resolution };
      const reply = $("close-reply").value.trim();
      if (reply) body.reply_summary = reply;
      step("close", body, "close-button", (p) => `${label("statuses", p.status)}。`);
    });
    $("prev-page").addEventListener("click", () =>
      loadQueue(state.board.queue, Math.max(0, state.board.offset - PAGE_SIZE), false));
    $("next-page").addEventListener("click", () => loadQueue(state.board.queue, state.board.offset + PAGE_SIZE, false));
    $("claim-button").addEventListener("click", claimNext);
    $("close-dialog").addEventListener("click", closeDialog);
    $("item-dialog").addEventListener("close", () => { state.item = null; });
    $("toggle-raw").addEventListener("click", () => {
      state.showRaw = !state.showRaw;
      renderItemText();
    });
    $("reroute-form").addEventListener("submit", reroute);
    $("reroute-domain").addEventListener("change", () =>
      fillDepartmentSelect($("reroute-department"), $("reroute-domain").value, $("reroute-department").value));
    document.addEventListener("keydown", onKey);
    window.addEventListener("beforeunload", (event) => {
      if (hasUnsavedText()) event.preventDefault();
    });

    const stored = sessionStorage.getItem(KEY_STORAGE);
    if (stored) signIn(stored, true);
    else requireSignIn("");
  }

  document.addEventListener("DOMContentLoaded", init);
})();
