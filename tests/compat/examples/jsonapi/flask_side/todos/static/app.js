// Todos: list, add and toggle todos, and add two numbers, through the JSON API.
"use strict";

async function api(method, url, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  return response.status === 204 ? null : response.json();
}

async function showTodos() {
  const data = await api("GET", "/api/todos");
  const list = document.getElementById("todos");
  list.replaceChildren();
  for (const todo of data.todos) {
    const item = document.createElement("li");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = todo.done;
    box.addEventListener("change", async () => {
      await api("PUT", `/api/todos/${todo.id}`, { done: box.checked });
    });
    item.append(box, " ", todo.title);
    list.append(item);
  }
}

document.getElementById("new-todo").addEventListener("submit", async (event) => {
  event.preventDefault();
  const title = event.target.elements.title;
  await api("POST", "/api/todos", { title: title.value });
  title.value = "";
  await showTodos();
});

document.getElementById("calc").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const response = await fetch(form.action, { method: "POST", body: new FormData(form) });
  const data = await response.json();
  document.getElementById("result").textContent = response.ok ? data.result : data.message;
});

showTodos();
