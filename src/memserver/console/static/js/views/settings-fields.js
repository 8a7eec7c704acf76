// Every project setting the API has, in one table: the form and the read-only view are drawn from it, and a
// test keeps it equal to the server's ProjectSettings (so a new setting cannot be forgotten here).
export const FIELDSETS = [
  ["general", "Project"],
  ["extraction", "Extraction"],
  ["categories", "Categories"],
  ["graph", "Graph and search"],
  ["compat", "Compatibility: kept and returned, no effect in memserver"],
];

export const FIELDS = [
  { name: "name", label: "Name", kind: "string", fieldset: "general", required: true },
  { name: "description", label: "Description", kind: "text", fieldset: "general" },
  { name: "custom_instructions", label: "Instructions for user memories", kind: "text", fieldset: "extraction",
    help: "Go into every extraction prompt for user memories. Empty: none." },
  { name: "agent_custom_instructions", label: "Instructions for agent memories", kind: "text", fieldset: "extraction",
    help: "The same for memories of an agent_id. Empty: none." },
  { name: "inclusion_prompt", label: "What to include", kind: "text", fieldset: "extraction",
    help: "Kinds of facts to store (includes). Empty: none." },
  { name: "exclusion_prompt", label: "What to exclude", kind: "text", fieldset: "extraction",
    help: "Kinds of facts never to store (excludes). Empty: none." },
  { name: "custom_categories", label: "Categories", kind: "categories", fieldset: "categories",
    help: "The categories the LLM tags memories with; these replace the 15 default ones." },
  { name: "enable_graph", label: "Build the graph", kind: "bool", fieldset: "graph",
    help: "Inferred adds also extract entities and relations (in the same LLM call)." },
  { name: "decay", label: "Recency decay", kind: "bool", fieldset: "graph",
    help: "Search scores are weighted by recency and recent reads (0.3x to 1.5x)." },
  { name: "multilingual", label: "Language of inferred memories", kind: "tristate", fieldset: "graph",
    options: [["", "Unset (the default): keep the language of the input"], ["true", "true: keep the language of the input"],
      ["false", "false: write inferred memories in English"]],
    help: "The API reads an unset value as false, so an untouched project shows false here; choose Unset to be sure the input's language is kept." },
  { name: "memory_depth", label: "Memory depth", kind: "string", fieldset: "compat" },
  { name: "usecase_setting", label: "Use case (JSON)", kind: "json", fieldset: "compat" },
  { name: "version", label: "Version", kind: "string", fieldset: "compat" },
  { name: "retrieval_criteria", label: "Retrieval criteria (JSON list)", kind: "json", fieldset: "compat" },
];

// Profiles (POST /v2/profiles/settings/, per entity type the server lists) and Dream (PATCH .../dream/config/)
// have routes of their own: settings-project.js draws them after these fieldsets.
