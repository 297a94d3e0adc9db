// Parses TwiML for the tests (fast-xml-parser, a test-only import): refuses XML that is not
// well-formed, and gives the elements in order with their attributes and text.
import { XMLParser, XMLValidator } from "fast-xml-parser";

export interface Element {
  name: string;
  attributes: Record<string, string>;
  text: string;
  children: Element[];
}

type Ordered = Record<string, unknown> & { ":@"?: Record<string, string> };

function convert(node: Ordered): Element | null {
  const name = Object.keys(node).find((k) => k !== ":@");
  if (!name || name === "#text" || name === "?xml") return null;
  const kids = node[name] as Ordered[];
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(node[":@"] ?? {})) attributes[k.replace(/^@_/, "")] = String(v);
  const text = kids.filter((k) => "#text" in k).map((k) => String(k["#text"])).join("");
  return { name, attributes, text, children: kids.map(convert).filter((e): e is Element => e !== null) };
}

/** The document's root element; throws if the XML is not well-formed. */
export function parseTwiml(xml: string): Element {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`TwiML is not well-formed: ${JSON.stringify(valid.err)}`);
  const ordered = new XMLParser({
    ignoreAttributes: false,
    preserveOrder: true,
    parseAttributeValue: false,
    parseTagValue: false,
    trimValues: false,
  }).parse(xml) as Ordered[];
  const roots = ordered.map(convert).filter((e): e is Element => e !== null);
  if (roots.length !== 1) throw new Error("TwiML must have one root element");
  return roots[0];
}
