export const defineWorkflow = (definition) => definition;
