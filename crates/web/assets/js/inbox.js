import { start } from "./chrome.js";
import "../components/inbox-list.js";

await start();
