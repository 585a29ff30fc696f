// The pages in the navigation, in order. A new page: a module exporting {id, title, render}
// and one line here.

import coop from "./coop.js";
import account from "./account.js";
import log from "./log.js";
import proposals from "./proposals.js";
import trust from "./trust.js";

export const PAGES = [coop, account, proposals, trust, log];
