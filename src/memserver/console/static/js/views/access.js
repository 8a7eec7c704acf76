import { h } from "../core/dom.js";
export async function load(panel) {
  panel.replaceChildren(h("p", {}, "todo"));
}
