/*
 * The error a bad configuration file raises: the file plus every problem found, each rendered as one
 * line by formatProblem. Kept free of the schema so the CLI can recognise it without loading zod.
 */
export interface ConfigProblem {
  /** rendered key path (`smtp.listen[0].port`), `line 3, column 7` for syntax errors, or '' for the whole file */
  key: string;
  /** JSON of the offending value, or "nothing" */
  found: string;
  expected: string;
}

export function formatProblem(file: string, p: ConfigProblem): string {
  return `${file}: ${p.key ? `${p.key}: ` : ''}found ${p.found}, expected ${p.expected}`;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'));
  }

  /** one line per problem, as printed by `cartero check-config` */
  lines(): string[] {
    return this.problems.map((p) => formatProblem(this.file, p));
  }
}
