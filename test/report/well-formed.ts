/**
 * A small well-formedness check for the report page (no parser package needed): every element
 * closes in order (void elements may self-close), attributes are quoted, and text has no raw '<'
 * or stray '&'. Returns the problems found, empty when the page is well formed.
 */
const voidElements = new Set(['meta', 'br', 'img', 'link', 'hr', 'input']);

export function wellFormedProblems(html: string): string[] {
  const problems: string[] = [];
  const body = html
    .replace(/^<!DOCTYPE html>\s*/i, '')
    .replace(/<style>[\s\S]*?<\/style>/, '<style></style>');
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+(?:="[^"]*")?)*)\s*(\/?)>/g;
  const stack: string[] = [];
  let last = 0;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const text = body.slice(last, m.index);
    if (text.includes('<'))
      problems.push(`raw '<' in text near: ${text.slice(text.indexOf('<'), text.indexOf('<') + 40)}`);
    if (/&(?!(?:amp|lt|gt|quot|#\d+);)/.test(text)) problems.push(`stray '&' in text: ${text.slice(0, 60)}`);
    last = tag.lastIndex;
    const [, closing, rawName, , selfClosing] = m;
    const name = rawName!.toLowerCase();
    if (closing) {
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? 'nothing'}>`);
    } else if (!selfClosing && !voidElements.has(name)) {
      stack.push(name);
    }
  }
  const rest = body.slice(last);
  if (rest.includes('<'))
    problems.push(`unparsed markup: ${rest.slice(rest.indexOf('<'), rest.indexOf('<') + 60)}`);
  if (stack.length) problems.push(`unclosed: ${stack.join(' > ')}`);
  return problems;
}
