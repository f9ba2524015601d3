//===----------------------------------------------------------------------===//
//
// This source file is part of the liverelay open source project
//
// Copyright (c) 2026 the liverelay project authors
// Licensed under Apache License v2.0
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import ArgumentParser
import Console
import Foundation

/// `liverelay console`: the console's users. (The console itself runs inside `liverelay local`, at `/` of its HTTP
/// listener.)
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "The web console: manage its users.",
        discussion: """
            In local mode the console is served at / of the --http-listen address of `liverelay local`, which \
            prints its URL; its users are kept in console-users.json in the state directory, as bcrypt hashes.
            """,
        subcommands: [Users.self]
    )

    struct StateOptions: ParsableArguments {
        @Option(help: "Local mode's state directory (default: $XDG_STATE_HOME/liverelay).")
        var stateDir: String?

        var store: LocalUserStore {
            LocalUserStore(stateDirectory: self.stateDir ?? LocalCommand.defaultStateDirectory())
        }
    }

    struct PasswordOptions: ParsableArguments {
        @Flag(help: "Read the password from the first line of standard input instead of generating one.")
        var passwordStdin = false

        /// The password to set, and whether it was generated (and so is printed once).
        func password() throws -> (String, generated: Bool) {
            guard self.passwordStdin else {
                return (ConsoleUser.generatePassword(), true)
            }
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw ValidationError("--password-stdin: standard input has no password on its first line.")
            }
            guard line.utf8.count <= 72 else {
                throw ValidationError("--password-stdin: bcrypt takes at most 72 bytes of a password.")
            }
            return (line, false)
        }
    }

    struct Users: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "users",
            abstract: "Add, remove and list console users, and set their passwords.",
            subcommands: [Add.self, Remove.self, Passwd.self, List.self]
        )
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user; prints a generated password once unless --password-stdin gives one."
        )

        @Argument(help: "The user name (lowercase letters, digits and '-').")
        var name: String

        @Option(help: "The namespace whose streams are the user's (default: the user name).")
        var namespace: String?

        @Flag(help: "An admin sees and changes every stream.")
        var admin = false

        @OptionGroup var state: StateOptions
        @OptionGroup var passwordOptions: PasswordOptions

        func validate() throws {
            if let problem = ConsoleUser.nameProblem(self.name) {
                throw ValidationError("user name \(problem)")
            }
            if let problem = ConsoleUser.nameProblem(self.namespace ?? self.name) {
                throw ValidationError("--namespace \(problem)")
            }
        }

        func run() async throws {
            let (password, generated) = try self.passwordOptions.password()
            let user = ConsoleUser(
                name: self.name,
                passwordHash: ConsoleUser.hash(password: password),
                admin: self.admin,
                namespace: self.namespace ?? self.name
            )
            do {
                try await self.state.store.add(user)
            } catch let error as ConsoleStoreError {
                throw ValidationError(error.description)
            }
            print("user \(user.name) added (namespace \(user.namespace)\(user.admin ? ", admin" : ""))")
            if generated {
                print("password (shown once): \(password)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user; their sessions end.")

        @Argument(help: "The user name.")
        var name: String

        @OptionGroup var state: StateOptions

        func run() async throws {
            do {
                try await self.state.store.remove(named: self.name)
            } catch let error as ConsoleStoreError {
                throw ValidationError(error.description)
            }
            print("user \(self.name) removed")
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a user's password; prints a generated one once unless --password-stdin gives one."
        )

        @Argument(help: "The user name.")
        var name: String

        @OptionGroup var state: StateOptions
        @OptionGroup var passwordOptions: PasswordOptions

        func run() async throws {
            let (password, generated) = try self.passwordOptions.password()
            do {
                try await self.state.store.setPassword(name: self.name, password: password)
            } catch let error as ConsoleStoreError {
                throw ValidationError(error.description)
            }
            print("password of \(self.name) changed")
            if generated {
                print("password (shown once): \(password)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the users (never their password hashes).")

        @OptionGroup var state: StateOptions

        func run() async throws {
            for user in try await self.state.store.users() {
                print("\(user.name)\tnamespace \(user.namespace)\(user.admin ? "\tadmin" : "")")
            }
        }
    }
}
