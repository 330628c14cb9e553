import { api, session, t } from "../huoban.js";
import { start, showError } from "./chrome.js";

await start({ auth: false });
const form = document.querySelector("#signin");
const next = new URLSearchParams(location.search).get("next");
if (next) showError({ message: t("signin.expired") });
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(form);
  if (!f.get("phone") || !f.get("password")) { showError({ message: t("signin.missing") }); return; }
  try {
    const s = await api.post("/api/v1/sessions", { phone: f.get("phone"), password: f.get("password"), channel: "h5" }, { noRedirect: true });
    session.set(s.token);
    location.assign(next && next.startsWith("/h5/") ? next : "/h5/");
  } catch (err) { showError(err); }
});
