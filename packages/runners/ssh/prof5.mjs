import ssh2 from "ssh2";
import fs from "node:fs";
const user = process.argv[2];
const cmd = process.argv[3];
const c = new ssh2.Client();
let noexit = 0;
const log = [];
c.on("ready", async () => {
  const one = (i) => new Promise((res) => c.exec(cmd, (err, ch) => {
    if (err) { console.log("err", i, err.message); return res(); }
    let exit;
    ch.on("data", () => {}); ch.stderr.on("data", () => {});
    ch.on("exit", (...a) => (exit = a));
    ch.on("close", () => { if (!exit) { noexit++; log.push("NOEXIT local id " + ch.incoming.id + "/" + ch.outgoing.id); } res(); });
    ch.end();
  }));
  for (let round = 0; round < 5; round++) await Promise.all(Array.from({ length: 8 }, (_, i) => one(round * 8 + i)));
  console.log(JSON.stringify(cmd), "noexit", noexit); c.end();
}).connect({ host: "127.0.0.1", port: 22022, username: user, privateKey: fs.readFileSync("/tmp/cinderts-sshd/client_ed25519"), hostVerifier: () => true, debug: (m) => { if (/CHANNEL_(CLOSE|EOF|REQUEST|FAILURE|OPEN)/.test(m)) log.push(m); } });
process.on("exit", () => { fs.writeFileSync("/tmp/prof5.log", log.join("\n")); });
