// The console's page and style: no framework, no external resource (it works offline under a strict
// Content-Security-Policy: only this origin's script and style, nothing inline).
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>relaybox console</title>
<link rel="stylesheet" href="/console.css">
<script src="/console.js" defer></script>
</head>
<body>
<header><h1>relaybox</h1><span id="who"></span><button id="logout" hidden>Log out</button></header>
<main>
<section id="login-view">
  <h2>Log in</h2>
  <form id="login-form">
    <label>User <input name="user" id="login-user" autocomplete="username"></label>
    <label>Password <input name="password" id="login-password" type="password" autocomplete="current-password"></label>
    <p class="or">or</p>
    <label>Admin token <input name="token" id="login-token" type="password" autocomplete="off"></label>
    <button type="submit" id="login-submit">Log in</button>
  </form>
  <p id="login-error" class="error" role="alert"></p>
</section>
<section id="app-view" hidden>
  <nav>
    <button data-tab="status" class="active">Status</button>
    <button data-tab="queue">Queue</button>
    <button data-tab="users">Users</button>
    <button data-tab="bans">Bans</button>
    <button data-tab="dns">DNS &amp; DKIM</button>
  </nav>
  <p id="notice" role="status"></p>
  <div id="tab-status" class="tab"></div>
  <div id="tab-queue" class="tab" hidden>
    <form id="queue-filter" class="filters">
      <label>State <select name="state" id="filter-state"><option value="">any</option><option>active</option><option>deferred</option><option>hold</option><option>incoming</option></select></label>
      <label>Sender <input name="sender"></label>
      <label>Recipient <input name="recipient"></label>
      <label>User <input name="user"></label>
      <label>Older than <input name="older-than" placeholder="2h"></label>
      <button type="submit">Filter</button>
    </form>
    <div class="actions">
      <button data-queue-action="hold">Hold</button>
      <button data-queue-action="release">Release</button>
      <button data-queue-action="retry">Retry now</button>
      <button data-queue-action="delete" class="danger">Delete</button>
      <span>selected messages</span>
    </div>
    <table id="queue-table"></table>
    <pre id="queue-headers" hidden></pre>
  </div>
  <div id="tab-users" class="tab" hidden><table id="users-table"></table></div>
  <div id="tab-bans" class="tab" hidden>
    <form id="ban-form" class="filters">
      <label>Address <input name="address" required></label>
      <label>For <input name="duration" value="1h"></label>
      <label>Reason <input name="reason"></label>
      <button type="submit">Ban</button>
    </form>
    <table id="bans-table"></table>
  </div>
  <div id="tab-dns" class="tab" hidden><h3>Records to publish</h3><table id="dns-table"></table><div id="dkim-list"></div></div>
</main>
</body>
</html>
`;

export const CONSOLE_CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{display:flex;gap:1em;align-items:center;background:#1d2330;color:#fff;padding:.5em 1em}
header h1{font-size:1.2em;margin:0}#who{margin-left:auto}
main{padding:1em;max-width:1200px}
nav{display:flex;gap:.3em;margin-bottom:1em}nav button.active{background:#1d2330;color:#fff}
button{padding:.3em .8em;border:1px solid #8a93a6;border-radius:4px;background:#fff;cursor:pointer}
button.danger{border-color:#b3261e;color:#b3261e}
table{border-collapse:collapse;width:100%;background:#fff;margin:.5em 0}
th,td{border-bottom:1px solid #dde1e8;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eef0f4}
.filters,.actions{display:flex;gap:.6em;flex-wrap:wrap;align-items:end;margin:.5em 0}
label{display:flex;flex-direction:column;font-size:.85em}
#login-form{display:flex;flex-direction:column;gap:.6em;max-width:320px}
.error{color:#b3261e}.ok{color:#1e6b2f}.bad{color:#b3261e;font-weight:600}
pre{background:#fff;padding:.5em;overflow:auto;max-height:30em;border:1px solid #dde1e8}
.or{margin:0;color:#667}
`;
