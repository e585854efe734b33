// Builds the site into dist/: reads the pages in src/, wraps them in a layout, copies assets.
const fs = require("fs");
const path = require("path");

const src = path.join(__dirname, "src");
const dist = path.join(__dirname, "dist");
fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(dist, { recursive: true });

const layout = (title, body) => `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${title}</title><link rel="stylesheet" href="/site.css"></head>
<body>${body}
<footer>Built at ${new Date().toISOString()} by node ${process.version}</footer>
</body>
</html>
`;

for (const file of fs.readdirSync(src)) {
  const from = path.join(src, file);
  if (file.endsWith(".body.html")) {
    const name = file.replace(".body.html", ".html");
    const body = fs.readFileSync(from, "utf8");
    const title = (body.match(/<h1>(.*?)<\/h1>/) || [null, "Untitled"])[1];
    fs.writeFileSync(path.join(dist, name), layout(title, body));
    console.log(`built ${name}`);
  } else {
    fs.copyFileSync(from, path.join(dist, file));
    console.log(`copied ${file}`);
  }
}
console.log("build complete");
