// Drives age-encryption (npm, the age author's TypeScript age) for tests/keys/test_keys_interop.py.
//   node agejs.mjs generate [hybrid|x25519]        -> {"identity": ..., "recipient": ...}
//   node agejs.mjs recipient IDENTITY             -> the identity's recipient
//   node agejs.mjs encrypt [--armor] RECIPIENT... < plain > sealed
//   node agejs.mjs decrypt IDENTITY_FILE...       < sealed (armored or not) > plain
// NODUS_AGE_JS is the node_modules folder the package was installed into.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.NODUS_AGE_JS;
if (!modules) throw new Error("NODUS_AGE_JS is not set");
const age = await import(pathToFileURL(join(modules, "age-encryption", "dist", "index.js")).href);
const [command, ...args] = process.argv.slice(2);
const stdin = () => new Uint8Array(readFileSync(0));
const write = (data) => new Promise((done) => process.stdout.write(data, done));

if (command === "generate") {
  const identity = args[0] === "x25519" ? await age.generateX25519Identity() : await age.generateHybridIdentity();
  await write(JSON.stringify({ identity, recipient: await age.identityToRecipient(identity) }));
} else if (command === "recipient") {
  await write(await age.identityToRecipient(args[0]));
} else if (command === "encrypt") {
  const armor = args[0] === "--armor";
  const encrypter = new age.Encrypter();
  for (const recipient of args.slice(armor ? 1 : 0)) encrypter.addRecipient(recipient);
  const sealed = await encrypter.encrypt(stdin());
  await write(armor ? age.armor.encode(sealed) : sealed);
} else if (command === "decrypt") {
  const decrypter = new age.Decrypter();
  for (const file of args) {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (line.startsWith("AGE-SECRET-KEY-")) decrypter.addIdentity(line.trim());
    }
  }
  let sealed = stdin();
  if (new TextDecoder().decode(sealed.subarray(0, 64)).trimStart().startsWith("-----BEGIN")) {
    sealed = age.armor.decode(new TextDecoder().decode(sealed));
  }
  await write(await decrypter.decrypt(sealed));
} else {
  throw new Error(`unknown command ${command}`);
}
