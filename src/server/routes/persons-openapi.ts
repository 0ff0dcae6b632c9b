// The OpenAPI paths of routes/persons.ts, from the schemas the routes validate with; openapi.ts passes its helpers.
import type { z } from "zod";
import {
  AssignResponse,
  CreatePersonBody,
  DeleteResponse,
  FaceIdsBody,
  FacesQuery,
  FacesResponse,
  MergeBody,
  NameBody,
  PersonFacesQuery,
  Person,
  PersonResponse,
  PersonsQuery,
  PersonsResponse,
  RejectResponse,
  SplitBody,
  SimilarFacesQuery,
  SimilarFacesResponse,
  SplitResponse,
  SuggestBody,
  SuggestionsResponse,
  SuggestResponse,
  UnassignBody,
} from "./persons.ts";

export interface OpenApiHelpers {
  json: (schema: z.ZodType) => unknown;
  queryParameters: (schema: z.ZodObject) => unknown[];
  ok: (schema: z.ZodType, description?: string) => unknown;
  error: (description: string) => unknown;
  apiErrors: Record<string, unknown>;
  idParam: unknown;
}

export function personsOpenApiPaths(h: OpenApiHelpers) {
  const body = (schema: z.ZodType) => ({ required: true, content: { "application/json": { schema: h.json(schema) } } });
  const notFound = { "404": h.error("No such person or face.") };
  const noFaces = { "409": h.error("The index has no faces (built without --faces); reads answer empty.") };
  const edit = (summary: string, schema: z.ZodType, response: z.ZodType, extra: Record<string, unknown> = {}) => ({
    post: { summary, parameters: [h.idParam], requestBody: body(schema), responses: { "200": h.ok(response), ...h.apiErrors, ...notFound, ...noFaces, ...extra } },
  });
  return {
    "/api/persons": {
      get: { summary: "Persons, named first (by name), then unnamed clusters by size", parameters: h.queryParameters(PersonsQuery), responses: { "200": h.ok(PersonsResponse), ...h.apiErrors } },
      post: { summary: "Create a person (named, or not)", requestBody: body(CreatePersonBody), responses: { "201": h.ok(Person), ...h.apiErrors, "409": h.error("The name is taken (names are unique ignoring case), or the index has no faces.") } },
    },
    "/api/persons/{id}": {
      get: { summary: "One person and their faces", parameters: [h.idParam, ...h.queryParameters(PersonFacesQuery)], responses: { "200": h.ok(PersonResponse), ...h.apiErrors, ...notFound } },
      delete: {
        summary: "Delete a person: their faces belong to nobody again, to be clustered and suggested anew",
        parameters: [h.idParam],
        responses: { "200": h.ok(DeleteResponse), ...h.apiErrors, ...notFound, ...noFaces },
      },
    },
    "/api/persons/{id}/name": edit("Name or rename a person", NameBody, Person, { "409": h.error("The name is taken (names are unique ignoring case).") }),
    "/api/persons/{id}/merge": edit("Move every face of `sources` to this person and delete them", MergeBody, Person, { "409": h.error("Two different names would meet in an unnamed person; name it first.") }),
    "/api/persons/{id}/split": edit("Move some of this person's faces to a new person", SplitBody, SplitResponse),
    "/api/persons/{id}/assign": edit("These faces are this person (accepts their suggestions)", FaceIdsBody, AssignResponse),
    "/api/persons/{id}/reject": edit("These faces are not this person (suggested or not yet): never suggest them for this person again", FaceIdsBody, RejectResponse),
    "/api/persons/{id}/suggestions": {
      get: { summary: "Unassigned faces the last suggestion pass found close to this person, best first", parameters: [h.idParam, ...h.queryParameters(PersonFacesQuery)], responses: { "200": h.ok(SuggestionsResponse), ...h.apiErrors, ...notFound } },
    },
    "/api/faces": {
      get: { summary: "The faces of one image, with their persons", parameters: h.queryParameters(FacesQuery), responses: { "200": h.ok(FacesResponse), ...h.apiErrors, "404": h.error("No such image.") } },
    },
    "/api/faces/{id}/similar": {
      get: {
        summary: "Faces most like this one anywhere in the collection (the faces index), best first",
        parameters: [h.idParam, ...h.queryParameters(SimilarFacesQuery)],
        responses: { "200": h.ok(SimilarFacesResponse), ...h.apiErrors, ...notFound },
      },
    },
    "/api/faces/unassign": {
      post: { summary: "These faces belong to nobody", requestBody: body(UnassignBody), responses: { "200": h.ok(AssignResponse), ...h.apiErrors, ...notFound, ...noFaces } },
    },
    "/api/faces/suggestions": {
      post: {
        summary: "Run the suggestion pass: all named persons at once, skipping persons without prototypes and faces already suggested or checked",
        requestBody: { required: false, content: { "application/json": { schema: h.json(SuggestBody) } } },
        responses: { "200": h.ok(SuggestResponse), ...h.apiErrors, ...noFaces },
      },
    },
  };
}
