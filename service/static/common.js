/* Helpers shared by the console (console.js) and the 热点 page (hotspots.js), loaded before either:
 * `$` finds an element by id, `el` builds one. Text always goes in with textContent, never as HTML. */
"use strict";

window.TriagePage = Object.freeze({
  $: (id) => document.getElementById(id),
  el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("data-") || name.startsWith("aria-")) node.setAttribute(name, value);
      else node[name] = value;
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  },
});
