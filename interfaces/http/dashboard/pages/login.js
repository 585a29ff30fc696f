// Log in: a key file from `icn id export NAME --browser`, a key this browser already keeps,
// or a new key made here (an admin then admits its DID). The passphrase opens the key in
// this browser only; the node sees the DID and a signature over its challenge, never a key.

import { coops, login } from "../lib/api.js";
import { h, status } from "../lib/dom.js";
import { checkKeyFile, keyFiles, newKey, openKeyFile, saveKeyFile } from "../lib/keys.js";

export function renderLogin(root, ctx) {
  const note = status("login-status");
  const coopSelect = h("select", { id: "coop", name: "coop", required: true });
  const say = (text, cls = "") => {
    note.textContent = text;
    note.className = `status ${cls}`;
  };
  const busy = (form, on) => form.querySelectorAll("button").forEach((b) => (b.disabled = on));

  async function finish(form, key, doc) {
    const coop = coopSelect.value;
    say(`Signing the login challenge for ${coop} in this browser…`);
    try {
      await login(key, coop);
      if (doc) await saveKeyFile(doc);
      ctx.done(key);
    } catch (err) {
      say(
        err.code === "not-a-member"
          ? `${key.did} is not an active member of ${coop}: ask an admin to admit it.`
          : `Login failed: ${err.message}`,
        "error",
      );
      busy(form, false);
    }
  }

  // 1. Import a key file
  const fileInput = h("input", { id: "key-file", type: "file", accept: ".json,application/json", required: true });
  const importPass = h("input", { id: "import-passphrase", type: "password", autocomplete: "current-password", required: true });
  const importForm = h(
    "form",
    {
      id: "import-form",
      onsubmit: async (ev) => {
        ev.preventDefault();
        busy(importForm, true);
        try {
          const file = fileInput.files[0];
          const doc = checkKeyFile(JSON.parse(await file.text()));
          say("Opening the key with your passphrase (this takes a second)…");
          const key = await openKeyFile(doc, importPass.value);
          importPass.value = "";
          await finish(importForm, key, doc);
        } catch (err) {
          say(err.message, "error");
          busy(importForm, false);
        }
      },
    },
    h("label", { for: "key-file" }, "Key file", fileInput),
    h("label", { for: "import-passphrase" }, "Its passphrase", importPass),
    h("button", { type: "submit" }, "Import and log in"),
  );

  // 2. A key this browser keeps
  const storedSelect = h("select", { id: "stored-key" });
  const storedPass = h("input", { id: "stored-passphrase", type: "password", autocomplete: "current-password", required: true });
  const storedForm = h(
    "form",
    {
      id: "stored-form",
      onsubmit: async (ev) => {
        ev.preventDefault();
        busy(storedForm, true);
        try {
          const doc = (await keyFiles()).find((d) => d.did === storedSelect.value);
          say("Opening the key with your passphrase…");
          const key = await openKeyFile(doc, storedPass.value);
          storedPass.value = "";
          await finish(storedForm, key, null);
        } catch (err) {
          say(err.message, "error");
          busy(storedForm, false);
        }
      },
    },
    h("label", { for: "stored-key" }, "Key", storedSelect),
    h("label", { for: "stored-passphrase" }, "Passphrase", storedPass),
    h("button", { type: "submit" }, "Log in"),
  );
  const storedSection = h("section", { class: "card", hidden: true, "aria-labelledby": "stored-h" },
    h("h2", { id: "stored-h" }, "A key kept in this browser"), storedForm);

  // 3. A new key
  const newPass = h("input", { id: "new-passphrase", type: "password", autocomplete: "new-password", minlength: 8, required: true });
  const newPass2 = h("input", { id: "new-passphrase-2", type: "password", autocomplete: "new-password", minlength: 8, required: true });
  const made = h("div", { id: "new-key" });
  const newForm = h(
    "form",
    {
      id: "new-form",
      onsubmit: async (ev) => {
        ev.preventDefault();
        if (newPass.value !== newPass2.value) return say("The two passphrases differ.", "error");
        busy(newForm, true);
        try {
          const { doc, key } = await newKey(newPass.value);
          newPass.value = newPass2.value = "";
          await saveKeyFile(doc);
          const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2) + "\n"], { type: "application/json" }));
          made.replaceChildren(
            h("p", {}, "Your new DID (the key stays in this browser, sealed with your passphrase):"),
            h("p", { class: "mono" }, key.did),
            h("p", {}, "Ask an admin of the coop to admit it, e.g. ",
              h("code", {}, `icn member admit ${key.did} --coop ${coopSelect.value} --key ADMIN`), ", then log in."),
            h("p", {}, h("a", { href: url, download: "icn-key.json" }, "Download a backup of the sealed key file")),
          );
          say("Key made and kept in this browser.", "success");
          refreshStored();
        } catch (err) {
          say(err.message, "error");
        }
        busy(newForm, false);
      },
    },
    h("label", { for: "new-passphrase" }, "Passphrase (at least 8 characters)", newPass),
    h("label", { for: "new-passphrase-2" }, "Same passphrase again", newPass2),
    h("button", { type: "submit", class: "secondary" }, "Make a new key"),
  );

  async function refreshStored() {
    const docs = await keyFiles().catch(() => []);
    storedSelect.replaceChildren(...docs.map((d) => h("option", { value: d.did }, d.did)));
    storedSection.hidden = docs.length === 0;
  }

  root.replaceChildren(
    h("h1", {}, "Log in"),
    h("p", { class: "hint" }, "Your key never leaves this browser: it signs the node's challenge here."),
    h("section", { class: "card" }, h("label", { for: "coop" }, "Coop", coopSelect)),
    note,
    storedSection,
    h("section", { class: "card", "aria-labelledby": "import-h" },
      h("h2", { id: "import-h" }, "Import a key file"),
      h("p", { class: "hint" }, "Made with ", h("code", {}, "icn id export NAME --browser --out FILE"), "."),
      importForm),
    h("section", { class: "card", "aria-labelledby": "new-h" },
      h("details", {}, h("summary", { id: "new-h" }, "No key yet? Make one here"), newForm, made)),
  );
  coops().then((names) => {
    coopSelect.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
  });
  refreshStored();
  return () => {};
}
